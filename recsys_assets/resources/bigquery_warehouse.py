"""Google BigQuery warehouse: one day-partitioned events table behind the `Warehouse` interface."""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery
from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY, DEFAULT_RETRY
from pydantic import Field

from recsys_assets.domain.events import EVENTS_SCHEMA, conform, day_of, rows_per_value
from recsys_assets.domain.pair_pipeline import (
    BIGQUERY,
    PairsRequest,
    Relations,
    catalogue_table,
    run_pipeline,
    type_weights_table,
    valid_events_filter,
)
from recsys_assets.resources.warehouse import Warehouse, WarehousePartition, WarehouseUnavailable

T = TypeVar("T")

BQ_SCHEMA = [
    bigquery.SchemaField("user_id", "STRING"),
    bigquery.SchemaField("item_id", "STRING"),
    bigquery.SchemaField("event_type", "STRING"),
    bigquery.SchemaField("weight", "FLOAT64"),
    bigquery.SchemaField("event_ts", "TIMESTAMP"),
]
COLUMNS = ", ".join(field.name for field in BQ_SCHEMA)

# Identifiers cannot be query parameters in BigQuery, so they are checked before they reach SQL text.
_PROJECT = re.compile(r"^([a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_DATASET = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_TABLE = re.compile(r"^[A-Za-z0-9_-]{1,1024}$")
_DAY_PARTITION = re.compile(r"^\d{8}$")

# Staging tables expire by themselves, so a run killed between load and merge leaves nothing for long.
_STAGING_TTL = timedelta(hours=6)

# Failures that mean "BigQuery is not there right now" rather than "the request is wrong".
_OUTAGES: tuple[type[BaseException], ...] = (
    gexc.RetryError,
    gexc.ServerError,
    gexc.TooManyRequests,
    gexc.DeadlineExceeded,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    ConnectionError,
    TimeoutError,
)


def _resolve(value: Any) -> Any:
    """The plain value of a field that may hold a `dg.EnvVar` (the CLI uses resources outside Dagster)."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _days_label(days: list[str]) -> str:
    return days[0] if len(days) == 1 else f"{days[0]}..{days[-1]} ({len(days)} days)"


class BigQueryWarehouse(Warehouse):
    """Google BigQuery: a table day-partitioned on event_ts, read and written with parameterised SQL."""

    project: str = Field(description="Google Cloud project that owns the dataset and runs the query jobs.")
    dataset: str = Field(description="BigQuery dataset holding the events table.")
    table: str = Field(default="events", description="Events table, day-partitioned on event_ts.")
    location: str | None = Field(
        default=None,
        description="Location of the dataset and its jobs (e.g. EU, US, europe-west1); unset lets "
        "BigQuery infer it from the dataset.",
    )
    endpoint: str | None = Field(
        default=None,
        description="BigQuery REST endpoint override, e.g. http://127.0.0.1:9050 for an emulator; unset means Google.",
    )
    storage_endpoint: str | None = Field(
        default=None,
        description="host:port of a plaintext BigQuery Storage gRPC endpoint (emulators only); unset means Google's.",
    )
    anonymous_credentials: bool = Field(
        default=False, description="Send no credentials (emulators); otherwise Application Default Credentials."
    )
    use_storage_api: bool = Field(
        default=True,
        description="Download large query results through the BigQuery Storage Read API (fast, Arrow-native; "
        "needs bigquery.readsessions.create on the project); off means paged REST, which emulators can serve.",
    )
    # Both defaults keep a failing `list_partitions` under Dagster's 60 s sensor tick timeout, so the tick
    # reports this resource's message instead of a bare gRPC deadline.
    timeout_seconds: float = Field(default=30.0, description="Timeout of each HTTP request to BigQuery.")
    retry_deadline_seconds: float = Field(
        default=30.0,
        description="How long transient failures (5xx, rate limits, dropped connections) are retried with backoff "
        "before the warehouse is reported unavailable.",
    )
    job_timeout_seconds: float = Field(default=1800.0, description="Longest wait for one query or load job.")

    # -- names -----------------------------------------------------------------------------------------------------

    def _names(self) -> tuple[str, str, str]:
        project, dataset, table = (_resolve(v) for v in (self.project, self.dataset, self.table))
        for value, pattern, what in (
            (project, _PROJECT, "project"),
            (dataset, _DATASET, "dataset"),
            (table, _TABLE, "table"),
        ):
            if not isinstance(value, str) or not pattern.match(value):
                raise ValueError(f"invalid BigQuery {what} name {value!r}")
        return project, dataset, table

    @property
    def table_id(self) -> str:
        """Fully qualified `project.dataset.table`."""
        return ".".join(self._names())

    @property
    def table_ref(self) -> str:
        return f"bigquery:{self.table_id}"

    # -- clients and error translation ---------------------------------------------------------------------------

    def _retry(self) -> Any:
        return DEFAULT_RETRY.with_timeout(self.retry_deadline_seconds)

    def _job_retry(self) -> Any:
        # Re-issuing a failed query job wraps the API retries above, so it needs the longer deadline.
        return DEFAULT_JOB_RETRY.with_timeout(2 * self.retry_deadline_seconds)

    @contextlib.contextmanager
    def _client(self) -> Iterator[bigquery.Client]:
        endpoint = _resolve(self.endpoint)
        client = bigquery.Client(
            project=self._names()[0],
            location=_resolve(self.location) or None,
            credentials=AnonymousCredentials() if self.anonymous_credentials else None,
            client_options=ClientOptions(api_endpoint=endpoint) if endpoint else None,
        )
        try:
            yield client
        finally:
            client.close()

    def _storage_client(self) -> Any:
        """A Storage Read client on `storage_endpoint`, or None to let the BigQuery client build Google's."""
        endpoint = _resolve(self.storage_endpoint)
        if not (self.use_storage_api and endpoint):
            return None
        import grpc
        from google.cloud.bigquery_storage_v1 import BigQueryReadClient
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
            BigQueryReadGrpcTransport,
        )

        # `api_endpoint` alone would open a TLS channel, which a local emulator cannot answer.
        return BigQueryReadClient(transport=BigQueryReadGrpcTransport(channel=grpc.insecure_channel(endpoint)))

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run `fn`, turning outages, missing objects and denied access into `WarehouseUnavailable`.

        Messages name the table and the partitions involved; they never carry credentials or row data.
        """
        where = f"{self.table_ref} ({what})"
        try:
            return fn()
        except gexc.NotFound as exc:
            raise WarehouseUnavailable(f"BigQuery table or dataset not found: {where}: {exc.message}") from exc
        except (gexc.Forbidden, gexc.Unauthorized) as exc:
            raise WarehouseUnavailable(f"access denied to BigQuery {where}: {exc.message}") from exc
        except _OUTAGES as exc:
            host = _resolve(self.endpoint) or "bigquery.googleapis.com"
            raise WarehouseUnavailable(
                f"BigQuery at {host} unavailable for {where} after retrying for up to "
                f"{self.retry_deadline_seconds:g}s: {type(exc).__name__}: {exc}"
            ) from exc

    def _query(self, client: bigquery.Client, sql: str, params: list[Any]) -> Any:
        """Run one parameterised query job to completion and return its row iterator."""
        job = client.query(
            sql,
            job_config=bigquery.QueryJobConfig(query_parameters=params),
            retry=self._retry(),
            job_retry=self._job_retry(),
            timeout=self.timeout_seconds,
        )
        return job.result(retry=self._retry(), timeout=self.job_timeout_seconds)

    def _to_arrow(self, rows: Any) -> pa.Table:
        storage = self._storage_client()
        try:
            return rows.to_arrow(bqstorage_client=storage, create_bqstorage_client=self.use_storage_api)
        finally:
            if storage is not None:
                storage.transport.close()

    # -- Warehouse ---------------------------------------------------------------------------------------------

    def read_events(self, start: datetime, end: datetime) -> pa.Table:
        """Events with `start <= event_ts < end`, read through one parameterised query.

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the table or dataset does not exist, or access is denied.
        """
        start, end = _utc(start), _utc(end)
        # Ties on event_ts are broken on every column, so a re-read returns the same bytes.
        sql = (
            f"SELECT {COLUMNS} FROM `{self.table_id}` WHERE event_ts >= @start AND event_ts < @end "
            "ORDER BY event_ts, user_id, item_id, event_type, weight"
        )
        params = [
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", start),
            bigquery.ScalarQueryParameter("end", "TIMESTAMP", end),
        ]
        last_day = (end - timedelta(microseconds=1)).date()
        label = start.date().isoformat() if last_day <= start.date() else f"{start.date()}..{last_day}"

        def read() -> pa.Table:
            with self._client() as client:
                return self._to_arrow(self._query(client, sql, params))

        table = self._call(f"reading partition {label}", read)
        if table.num_rows == 0 and not set(EVENTS_SCHEMA.names) <= set(table.column_names):
            return EVENTS_SCHEMA.empty_table()
        return conform(table)

    def replace_days(self, events: pa.Table) -> dict[str, int]:
        """Replace every day present in `events` with exactly those rows, atomically per call.

        The rows are loaded into a short-lived staging table, then one MERGE deletes the target's rows of
        those days and inserts the staged ones: a single DML statement, so readers see the old day or the
        new one, never a mix, and a retried run writes the same result (WRITE_TRUNCATE into a `$YYYYMMDD`
        decorator would do the same per day, but not for several days at once).

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the dataset does not exist, or access is denied.
        """
        events = conform(events)
        per_day = rows_per_value(day_of(events["event_ts"]))
        if not per_day:
            return {}
        days = sorted(per_day)
        project, dataset, table = self._names()
        staging_id = f"{project}.{dataset}.{table}__staging_{uuid.uuid4().hex[:12]}"
        buffer = io.BytesIO()
        pq.write_table(events, buffer, coerce_timestamps="us")

        merge = (
            f"MERGE `{self.table_id}` AS target USING `{staging_id}` AS source ON FALSE "
            "WHEN NOT MATCHED BY SOURCE AND DATE(target.event_ts) IN UNNEST(@days) THEN DELETE "
            f"WHEN NOT MATCHED THEN INSERT ({COLUMNS}) "
            f"VALUES ({', '.join('source.' + field.name for field in BQ_SCHEMA)})"
        )
        params = [bigquery.ArrayQueryParameter("days", "DATE", [date.fromisoformat(d) for d in days])]

        def write() -> None:
            with self._client() as client:
                self._ensure_table(client)
                self.merge_through_staging(client, staging_id, BQ_SCHEMA, buffer, merge, params)

        self._call(f"replacing partition {_days_label(days)}", write)
        return per_day

    def merge_through_staging(
        self,
        client: bigquery.Client,
        staging_id: str,
        schema: list[bigquery.SchemaField],
        parquet: io.BytesIO,
        merge: str,
        params: list,
    ) -> None:
        """Load `parquet` into the short-lived table `staging_id`, run the one `merge` statement, drop the table."""
        staging = bigquery.Table(staging_id, schema=schema)
        staging.expires = datetime.now(UTC) + _STAGING_TTL
        client.create_table(staging, retry=self._retry(), timeout=self.timeout_seconds)
        try:
            parquet.seek(0)
            # No `size`: the upload is resumable (retried chunk by chunk), never multipart.
            load = client.load_table_from_file(
                parquet,
                staging_id,
                job_config=bigquery.LoadJobConfig(
                    source_format=bigquery.SourceFormat.PARQUET,
                    schema=schema,
                    write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
                ),
                timeout=self.timeout_seconds,
            )
            load.result(retry=self._retry(), timeout=self.job_timeout_seconds)
            self._query(client, merge, params)
        finally:
            client.delete_table(staging_id, not_found_ok=True, retry=self._retry(), timeout=self.timeout_seconds)

    def build_pairs(self, request: PairsRequest) -> str:
        """The pipeline as BigQuery jobs over the events table's window; only the sorted pairs are downloaded.

        The window's rows are read from the table with the extracts' validity rules (`valid_events_filter`),
        the event-type weights and the catalogue arrive as small loaded tables, and every intermediate
        result is a short-lived table beside the events table (expiring by itself, dropped at the end).
        The pairs come back page by page (through the Storage Read API when it is on) into Parquet shards.

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the table or dataset does not exist, or access is denied.
        """
        project, dataset, table = self._names()
        prefix = f"{project}.{dataset}.{table}__pairs_{uuid.uuid4().hex[:12]}"
        rel = Relations(
            **{
                name: f"`{prefix}_{name}`"
                for name in ("events", "type_weights", "catalogue", "labelled", "users", "items")
            }
        )
        window = f"{request.start.date()}..{(request.end - timedelta(microseconds=1)).date()}"

        def build() -> str:
            with self._client() as client:
                engine = _BigQueryEngine(self, client)
                try:
                    engine.create(
                        rel.events,
                        f"SELECT {COLUMNS} FROM `{self.table_id}` "
                        f"WHERE event_ts >= @start AND event_ts < @end AND {valid_events_filter()}",
                        [
                            bigquery.ScalarQueryParameter("start", "TIMESTAMP", _utc(request.start)),
                            bigquery.ScalarQueryParameter("end", "TIMESTAMP", _utc(request.end)),
                        ],
                    )
                    engine.load(
                        rel.type_weights,
                        type_weights_table(request.params),
                        [bigquery.SchemaField("event_type", "STRING"), bigquery.SchemaField("type_weight", "FLOAT64")],
                    )
                    engine.load(
                        rel.catalogue,
                        catalogue_table(request.catalogue_ids),
                        [bigquery.SchemaField("item_id", "STRING")],
                    )
                    return run_pipeline(engine, BIGQUERY, rel, request.params, request.protocols, request.files)
                finally:
                    engine.drop_all()

        return self._call(f"building the pairs of {window}", build)

    def _ensure_table(self, client: bigquery.Client) -> None:
        """Create the day-partitioned events table on first write; an existing table is left as it is."""
        try:
            client.get_table(self.table_id, retry=self._retry(), timeout=self.timeout_seconds)
            return
        except gexc.NotFound:
            pass
        # A missing dataset is a configuration error to report, never something to create (and asking
        # first gives a clean 404 where some emulators answer tables.insert with a retryable 500).
        project, dataset, _ = self._names()
        client.get_dataset(f"{project}.{dataset}", retry=self._retry(), timeout=self.timeout_seconds)
        table = bigquery.Table(self.table_id, schema=BQ_SCHEMA)
        table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="event_ts")
        client.create_table(table, exists_ok=True, retry=self._retry(), timeout=self.timeout_seconds)

    def existing_partitions(self) -> list[WarehousePartition]:
        """`list_partitions`, except that a table not created yet is empty (the first write creates it)."""

        def table_exists() -> bool:
            with self._client() as client:
                try:
                    client.get_table(self.table_id, retry=self._retry(), timeout=self.timeout_seconds)
                except gexc.NotFound:
                    return False
                return True

        return self.list_partitions() if self._call("looking up the events table", table_exists) else []

    def list_partitions(self) -> list[WarehousePartition]:
        """Every non-empty day partition, from `INFORMATION_SCHEMA.PARTITIONS`.

        Raises:
            WarehouseUnavailable: BigQuery is unreachable, the table does not exist, or access is denied.
        """
        project, dataset, table = self._names()
        sql = (
            "SELECT partition_id, total_rows, last_modified_time "
            f"FROM `{project}.{dataset}.INFORMATION_SCHEMA.PARTITIONS` "
            "WHERE table_name = @table_name ORDER BY partition_id"
        )
        params = [bigquery.ScalarQueryParameter("table_name", "STRING", table)]

        def read() -> pa.Table:
            with self._client() as client:
                # The view answers "no rows" for a table that does not exist; that is a configuration
                # error here, not an empty warehouse.
                client.get_table(self.table_id, retry=self._retry(), timeout=self.timeout_seconds)
                return self._to_arrow(self._query(client, sql, params))

        rows = self._call("listing partitions", read).to_pylist()
        return [
            WarehousePartition(row["partition_id"], int(row["total_rows"]), _utc(row["last_modified_time"]))
            # Skips __NULL__ / __UNPARTITIONED__ (and anything that is not a day).
            for row in rows
            if _DAY_PARTITION.match(row["partition_id"] or "") and (row["total_rows"] or 0) > 0
        ]


class _BigQueryEngine:
    """`pair_pipeline.Engine` as BigQuery jobs; every table it makes expires by itself and is dropped by `drop_all`."""

    # Rows per page of the downloaded pairs (REST paging; the Storage Read API sends its own batches).
    PAGE_ROWS = 500_000

    def __init__(self, warehouse: BigQueryWarehouse, client: bigquery.Client) -> None:
        self.warehouse, self.client = warehouse, client
        self.made: list[str] = []

    @staticmethod
    def _table_id(name: str) -> str:
        return name.strip("`")

    def _expire(self, name: str) -> None:
        table = self.client.get_table(self._table_id(name), retry=self.warehouse._retry())
        table.expires = datetime.now(UTC) + _STAGING_TTL
        self.client.update_table(table, ["expires"], retry=self.warehouse._retry())

    def one(self, sql: str) -> dict[str, Any]:
        rows = list(self.warehouse._query(self.client, sql, []))
        return dict(rows[0].items())

    def create(self, name: str, sql: str, params: list | None = None) -> None:
        self.made.append(name)
        self.warehouse._query(self.client, f"CREATE TABLE {name} AS {sql}", params or [])
        self._expire(name)

    def load(self, name: str, table: pa.Table, schema: list[bigquery.SchemaField]) -> None:
        """A small parameter table (the event-type weights, the catalogue), uploaded as Parquet."""
        self.made.append(name)
        created = bigquery.Table(self._table_id(name), schema=schema)
        created.expires = datetime.now(UTC) + _STAGING_TTL
        self.client.create_table(created, retry=self.warehouse._retry(), timeout=self.warehouse.timeout_seconds)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        buffer.seek(0)
        # No `size`: the upload is resumable (retried chunk by chunk), never multipart.
        load = self.client.load_table_from_file(
            buffer,
            self._table_id(name),
            job_config=bigquery.LoadJobConfig(
                source_format=bigquery.SourceFormat.PARQUET,
                schema=schema,
                write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            ),
            timeout=self.warehouse.timeout_seconds,
        )
        load.result(retry=self.warehouse._retry(), timeout=self.warehouse.job_timeout_seconds)

    def table(self, sql: str) -> pa.Table:
        return self.warehouse._to_arrow(self.warehouse._query(self.client, sql, []))

    def batches(self, sql: str) -> Iterator[pa.RecordBatch]:
        job = self.client.query(sql, retry=self.warehouse._retry(), job_retry=self.warehouse._job_retry())
        rows = job.result(
            page_size=self.PAGE_ROWS, retry=self.warehouse._retry(), timeout=self.warehouse.job_timeout_seconds
        )
        storage = self.warehouse._storage_client()
        if storage is None and self.warehouse.use_storage_api:
            from google.cloud.bigquery_storage_v1 import BigQueryReadClient

            storage = BigQueryReadClient()  # Google's endpoint, with the same default credentials
        try:
            # An ORDER BY query is read through one stream, so the batches keep the pairs' order.
            yield from rows.to_arrow_iterable(bqstorage_client=storage, max_queue_size=2)
        finally:
            if storage is not None:
                storage.transport.close()

    def drop_all(self) -> None:
        for name in self.made:
            self.client.delete_table(self._table_id(name), not_found_ok=True, retry=self.warehouse._retry())
