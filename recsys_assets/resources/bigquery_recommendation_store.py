"""Google BigQuery served lists: a table day-partitioned on `day`, beside the events, behind `RecommendationStore`."""

from __future__ import annotations

import io
import uuid
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core import exceptions as gexc
from google.cloud import bigquery
from pydantic import Field

from recsys_assets.domain.served_lists import LIST_COLUMNS, LISTS_SCHEMA
from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse
from recsys_assets.resources.recommendation_store import RecommendationStore, _check_day, conform_lists

BQ_LISTS_SCHEMA = [
    bigquery.SchemaField("day", "DATE"),
    bigquery.SchemaField("user_id", "STRING"),
    bigquery.SchemaField("rank", "INT64"),
    bigquery.SchemaField("item_id", "STRING"),
    bigquery.SchemaField("score", "FLOAT64"),
    bigquery.SchemaField("model_version", "STRING"),
    bigquery.SchemaField("model_family", "STRING"),
    bigquery.SchemaField("source", "STRING"),
]
COLUMNS = ", ".join(LIST_COLUMNS)


class BigQueryRecommendationStore(RecommendationStore):
    """Google BigQuery: the served lists' table, day-partitioned, written per day through staging + one MERGE."""

    warehouse: BigQueryWarehouse = Field(
        description="The events warehouse whose project, dataset, endpoints and retries the lists share; "
        "its `table` names the lists' table here."
    )

    @property
    def table_ref(self) -> str:
        return self.warehouse.table_ref

    def replace_day(self, day: date, lists: pa.Table) -> int:
        """Replace `day`'s partition with `lists`: loaded into a short-lived staging table, then one MERGE
        deletes the day's old rows and inserts the new ones (other days untouched; readers never see a mix).

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the dataset does not exist, or access is denied.
        """
        wh = self.warehouse
        staged = _check_day(day, lists)
        project, dataset, table = wh._names()
        params = [bigquery.ScalarQueryParameter("day", "DATE", day)]

        def write() -> None:
            with wh._client() as client:
                self._ensure_table(client)
                if staged.num_rows == 0:
                    # Nothing to load: the day's partition is emptied by one DELETE.
                    wh._query(client, f"DELETE FROM `{wh.table_id}` WHERE day = @day", params)
                    return
                staging_id = f"{project}.{dataset}.{table}__staging_{uuid.uuid4().hex[:12]}"
                buffer = io.BytesIO()
                pq.write_table(staged, buffer)
                merge = (
                    f"MERGE `{wh.table_id}` AS target USING `{staging_id}` AS source ON FALSE "
                    "WHEN NOT MATCHED BY SOURCE AND target.day = @day THEN DELETE "
                    f"WHEN NOT MATCHED THEN INSERT ({COLUMNS}) "
                    f"VALUES ({', '.join('source.' + name for name in LIST_COLUMNS)})"
                )
                wh.merge_through_staging(client, staging_id, BQ_LISTS_SCHEMA, buffer, merge, params)

        wh._call(f"replacing the lists of {day}", write)
        return staged.num_rows

    def _ensure_table(self, client: bigquery.Client) -> None:
        wh = self.warehouse
        project, dataset, _ = wh._names()
        client.get_dataset(f"{project}.{dataset}", retry=wh._retry(), timeout=wh.timeout_seconds)
        target = bigquery.Table(wh.table_id, schema=BQ_LISTS_SCHEMA)
        target.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="day")
        client.create_table(target, exists_ok=True, retry=wh._retry(), timeout=wh.timeout_seconds)

    def read_day(self, day: date, user_id: str | None = None) -> pa.Table:
        """`day`'s rows through one parameterised query (only `user_id`'s when given).

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the table or dataset does not exist, or access is denied.
        """
        wh = self.warehouse
        params = [bigquery.ScalarQueryParameter("day", "DATE", day)]
        where = "day = @day"
        if user_id is not None:
            params.append(bigquery.ScalarQueryParameter("user_id", "STRING", user_id))
            where += " AND user_id = @user_id"
        sql = f"SELECT {COLUMNS} FROM `{wh.table_id}` WHERE {where} ORDER BY user_id, rank"

        def read() -> pa.Table:
            with wh._client() as client:
                try:
                    client.get_table(wh.table_id, retry=wh._retry(), timeout=wh.timeout_seconds)
                except gexc.NotFound:
                    return LISTS_SCHEMA.empty_table()  # no list written yet (a missing dataset still fails)
                return wh._to_arrow(wh._query(client, sql, params))

        table = wh._call(f"reading the lists of {day}", read)
        if table.num_rows == 0 and not set(LIST_COLUMNS) <= set(table.column_names):
            return LISTS_SCHEMA.empty_table()
        return conform_lists(table)
