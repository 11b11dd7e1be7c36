"""Google BigQuery item catalogue: one postings table next to the events table, behind `ItemCatalogue`."""

from __future__ import annotations

import io
import uuid
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
from google.cloud import bigquery
from pydantic import Field

from recsys_assets.domain.items import ITEM_COLUMNS, ITEMS_SCHEMA, conform_items
from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse
from recsys_assets.resources.catalogue import ItemCatalogue

BQ_ITEMS_SCHEMA = [
    bigquery.SchemaField("item_id", "STRING"),
    bigquery.SchemaField("title", "STRING"),
    bigquery.SchemaField("description", "STRING"),
    bigquery.SchemaField("category", "STRING"),
    bigquery.SchemaField("location", "STRING"),
    bigquery.SchemaField("posted_date", "DATE"),
    bigquery.SchemaField("closed_date", "DATE"),
]


class BigQueryItemCatalogue(ItemCatalogue):
    """Google BigQuery: the postings table, read and upserted with parameterised SQL."""

    warehouse: BigQueryWarehouse = Field(
        description="The events warehouse whose project, dataset, endpoints and retries the catalogue shares; "
        "its `table` names the catalogue table here."
    )

    @property
    def table_ref(self) -> str:
        return self.warehouse.table_ref

    def read_items(self, posted_until: date) -> pa.Table:
        """Postings posted on or before `posted_until`, through one parameterised query.

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the table or dataset does not exist, or access is denied.
        """
        wh = self.warehouse
        sql = (
            f"SELECT {', '.join(ITEM_COLUMNS)} FROM `{wh.table_id}` "
            "WHERE posted_date IS NULL OR posted_date <= @until ORDER BY item_id"
        )
        params = [bigquery.ScalarQueryParameter("until", "DATE", posted_until)]

        def read() -> pa.Table:
            with wh._client() as client:
                return wh._to_arrow(wh._query(client, sql, params))

        table = wh._call(f"reading postings up to {posted_until}", read)
        if table.num_rows == 0 and not set(ITEM_COLUMNS) <= set(table.column_names):
            return ITEMS_SCHEMA.empty_table()
        return conform_items(table)

    def replace_items(self, items: pa.Table) -> int:
        """Upsert `items` by id: a staging load then one MERGE, so readers never see half an import.

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the dataset does not exist, or access is denied.
        """
        wh = self.warehouse
        staged = conform_items(items)
        project, dataset, table = wh._names()
        staging_id = f"{project}.{dataset}.{table}__staging_{uuid.uuid4().hex[:12]}"
        buffer = io.BytesIO()
        pq.write_table(staged, buffer)
        columns = ", ".join(ITEM_COLUMNS)
        merge = (
            f"MERGE `{wh.table_id}` AS target USING `{staging_id}` AS source ON FALSE "
            "WHEN NOT MATCHED BY SOURCE AND target.item_id IN (SELECT item_id FROM "
            f"`{staging_id}`) THEN DELETE "
            f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({', '.join('source.' + c for c in ITEM_COLUMNS)})"
        )

        def write() -> None:
            with wh._client() as client:
                target = bigquery.Table(wh.table_id, schema=BQ_ITEMS_SCHEMA)
                client.get_dataset(f"{project}.{dataset}", retry=wh._retry(), timeout=wh.timeout_seconds)
                client.create_table(target, exists_ok=True, retry=wh._retry(), timeout=wh.timeout_seconds)
                wh.merge_through_staging(client, staging_id, BQ_ITEMS_SCHEMA, buffer, merge, [])

        wh._call(f"upserting {staged.num_rows} postings", write)
        return staged.num_rows
