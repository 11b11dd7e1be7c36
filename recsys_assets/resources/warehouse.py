"""Warehouse interface for raw interaction events, and its embedded DuckDB implementation."""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field

from recsys_assets.domain import pair_pipeline
from recsys_assets.domain.events import EVENTS_SCHEMA, conform, day_of, rows_per_value
from recsys_assets.domain.pair_pipeline import PairsRequest, catalogue_table
from recsys_assets.domain.quality import reads_of
from recsys_assets.pipes.warm_python import run_module
from recsys_assets.settings import process_environment

# The embedded warehouse's engine process (`python -m` this module).
PAIRS_JOB_MODULE = "recsys_assets.domain.pairs_job"

# DuckDB names the process holding a file lock: "Conflicting lock is held in /usr/bin/python3 (PID 123)".
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.*?)(?: by user \S+)?\.?(?:\s+See also|$)", re.DOTALL)


class WarehouseUnavailable(RuntimeError):
    """The warehouse could not be reached or refused access; nothing was changed."""


@dataclass(frozen=True)
class WarehousePartition:
    """One day of events as the warehouse reports it (BigQuery's INFORMATION_SCHEMA.PARTITIONS shape)."""

    partition_id: str  # YYYYMMDD, as BigQuery names day partitions
    total_rows: int
    last_modified_time: datetime

    @property
    def partition_key(self) -> str:
        """The Dagster daily partition key (YYYY-MM-DD) for this warehouse partition."""
        return f"{self.partition_id[:4]}-{self.partition_id[4:6]}-{self.partition_id[6:]}"


class Warehouse(dg.ConfigurableResource, ABC):
    """Day-partitioned store of raw user-item interaction events."""

    @abstractmethod
    def read_events(self, start: datetime, end: datetime) -> pa.Table:
        """Events with `start <= event_ts < end`, in the events contract's schema."""

    def read_days(self, keys: Sequence[str], rows_per_read: int) -> Iterator[tuple[list[str], pa.Table]]:
        """The events of the partition days `keys`, a few consecutive days per read (`quality.reads_of`).

        Each read holds about `rows_per_read` rows by the warehouse's own count of each day
        (`list_partitions`, asked only when there is more than one day to read), so a long range is never
        held at once. Yields each read's days and rows.
        """
        rows_of_day = {p.partition_key: p.total_rows for p in self.list_partitions()} if len(keys) > 1 else {}
        for days in reads_of(keys, rows_of_day, rows_per_read):
            first = datetime.combine(date.fromisoformat(days[0]), datetime.min.time(), tzinfo=UTC)
            yield days, self.read_events(first, first + timedelta(days=len(days)))

    @abstractmethod
    def replace_days(self, events: pa.Table) -> dict[str, int]:
        """Replace every day present in `events` with exactly those rows (idempotent per day).

        Returns the number of rows written per partition key.
        """

    @abstractmethod
    def build_pairs(self, request: PairsRequest) -> str:
        """Run the training set's SQL pipeline (`pair_pipeline`) over the window and write its pairs.

        The rows stay in the warehouse's engine; this process sees at most one batch of the output at a time.
        Returns the content hash of the files written.
        """

    @abstractmethod
    def list_partitions(self) -> list[WarehousePartition]:
        """Every non-empty day partition with its row count and last modification time."""

    def existing_partitions(self) -> list[WarehousePartition]:
        """`list_partitions` for a writer about to create the data: a warehouse never written to is empty.

        Anything else that stops the listing (a lock, denied access, an outage) still raises
        WarehouseUnavailable: "unavailable" is never taken for "empty".
        """
        return self.list_partitions()

    @property
    @abstractmethod
    def table_ref(self) -> str:
        """Human-readable name of the events table, for messages and metadata."""


class DuckDBWarehouse(Warehouse):
    """Embedded warehouse: a DuckDB file on the local filesystem."""

    path: str = Field(description="Path of the DuckDB database file; created on first write.")
    table: str = Field(default="events", description="Name of the events table.")
    lock_timeout_seconds: float = Field(
        default=30.0, description="How long to wait for another process's write lock on the file before giving up."
    )
    pairs_memory_mib: int = Field(
        default=4096,
        ge=64,
        description="Working memory of the DuckDB process that builds the training set's pairs; beyond it the "
        "pipeline spills to a temporary folder.",
    )

    @property
    def table_ref(self) -> str:
        return f"duckdb:{self.path}#{self.table}"

    @contextlib.contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not Path(self.path).exists():
            raise WarehouseUnavailable(f"warehouse file {self.path} does not exist; seed or import events first")
        if not read_only:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = self._open(read_only)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        """A connection, waiting up to `lock_timeout_seconds` while another process holds the file's lock."""
        deadline = time.monotonic() + self.lock_timeout_seconds
        delay = 0.1
        while True:
            try:
                return duckdb.connect(self.path, read_only=read_only)
            except duckdb.IOException as exc:  # held by another writer, unreadable file, ...
                holder = _LOCK_HOLDER.search(str(exc))
                if holder is None:
                    raise WarehouseUnavailable(f"cannot open warehouse {self.table_ref}: {exc}") from exc
                if time.monotonic() + delay > deadline:
                    raise WarehouseUnavailable(
                        f"warehouse {self.path} is locked by another process ({holder.group(1).strip()}); "
                        f"waited {self.lock_timeout_seconds:g} s, nothing was changed"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _ensure_tables(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.table} (
                user_id VARCHAR, item_id VARCHAR, event_type VARCHAR, weight DOUBLE,
                event_ts TIMESTAMPTZ, event_date DATE)"""
        )
        # DuckDB has no partition metadata of its own; this table mirrors
        # BigQuery's INFORMATION_SCHEMA.PARTITIONS so sensors work the same on both.
        con.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.table}_partitions (
                partition_id VARCHAR PRIMARY KEY, total_rows BIGINT, last_modified_time TIMESTAMPTZ)"""
        )

    def _has_table(self, con: duckdb.DuckDBPyConnection) -> bool:
        return bool(
            con.sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", params=[self.table]
            ).fetchall()[0][0]
        )

    def read_events(self, start: datetime, end: datetime) -> pa.Table:
        with self._connect(read_only=True) as con:
            if not self._has_table(con):
                return EVENTS_SCHEMA.empty_table()
            table = con.sql(
                f"""SELECT user_id, item_id, event_type, weight, event_ts FROM {self.table}
                    WHERE event_ts >= ? AND event_ts < ? ORDER BY event_ts""",
                params=[start, end],
            ).to_arrow_table()
        return conform(table)

    def replace_days(self, events: pa.Table) -> dict[str, int]:
        events = conform(events)
        days = day_of(events["event_ts"])
        staged = events.append_column("event_date", days)
        per_day = rows_per_value(days)
        if not per_day:
            return {}
        now = datetime.now(UTC)
        with self._connect(read_only=False) as con:
            self._ensure_tables(con)
            con.register("staged_events", staged)
            con.register(
                "staged_days",
                pa.table({"event_date": pa.array(list(per_day), pa.string()).cast(pa.date32())}),
            )
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM {self.table} WHERE event_date IN (SELECT event_date FROM staged_days)")
                con.execute(f"INSERT INTO {self.table} SELECT * FROM staged_events")
                con.execute(
                    f"""INSERT OR REPLACE INTO {self.table}_partitions
                        SELECT strftime(event_date, '%Y%m%d'), count(*), ?::TIMESTAMPTZ
                        FROM staged_events GROUP BY event_date""",
                    [now],
                )
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return per_day

    def build_pairs(self, request: PairsRequest) -> str:
        """The pipeline on DuckDB over the window's daily extracts (what every model is trained on), in a process
        of its own (`domain.pairs_job`), so this process's memory stays flat whatever the window holds.

        Raises:
            WarehouseUnavailable: the engine process failed (its one-line reason included).
        """
        with tempfile.TemporaryDirectory(prefix="recsys-pairs-spec-") as folder:
            spec = {
                "extracts": request.extracts,
                "params": request.params.model_dump(mode="json"),
                "catalogue": None,
                "folder": request.files.folder,
                "memory_mib": int(self.pairs_memory_mib),
                "protocols": list(request.protocols),
                "shard_rows": pair_pipeline.SHARD_ROWS,
            }
            if request.catalogue_ids is not None:
                spec["catalogue"] = str(Path(folder) / "catalogue.parquet")
                pq.write_table(catalogue_table(request.catalogue_ids), spec["catalogue"])
            spec_path = Path(folder) / "spec.json"
            spec_path.write_text(json.dumps(spec))
            # Forked warm (the libraries already imported), output kept in files of the spec's folder.
            with open(Path(folder) / "stdout", "w+") as out, open(Path(folder) / "stderr", "w+") as err:
                with run_module(
                    PAIRS_JOB_MODULE, [str(spec_path)], process_environment(), stdout=out.fileno(), stderr=err.fileno()
                ) as job:
                    status = job.wait()
                out.seek(0)
                err.seek(0)
                stdout, stderr = out.read(), err.read()
        if status != 0:
            reason = (stderr.strip().splitlines() or [f"exit status {status}"])[-1]
            raise WarehouseUnavailable(f"DuckDB could not build the pairs of {request.files.folder}: {reason}")
        return stdout.strip().splitlines()[-1]

    def existing_partitions(self) -> list[WarehousePartition]:
        if not Path(self.path).exists():
            return []  # never written: empty, which a locked or unreadable file is not
        return self.list_partitions()

    def list_partitions(self) -> list[WarehousePartition]:
        with self._connect(read_only=True) as con:
            if not self._has_table(con):
                return []
            rows = con.sql(
                f"SELECT partition_id, total_rows, last_modified_time FROM {self.table}_partitions "
                "WHERE total_rows > 0 ORDER BY partition_id"
            ).fetchall()
        return [WarehousePartition(pid, int(n), ts.astimezone(UTC)) for pid, n, ts in rows]
