"""Where the daily served lists are written back: a table beside the events, one day at a time.

The interface mirrors `Warehouse` for events. The embedded default is a table in the warehouse's
DuckDB file; the cloud option a day-partitioned BigQuery table in the warehouse's dataset
(`bigquery_recommendation_store.py`). Writing a day replaces that day and nothing else, in one
transaction (DuckDB) or one MERGE statement (BigQuery): a rerun, or a rerun after a crash, leaves
exactly one copy of the day, and readers see the old day or the new one, never a mix.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa
from pydantic import Field

from recsys_assets.domain.served_lists import LIST_COLUMNS, LISTS_SCHEMA
from recsys_assets.resources.warehouse import DuckDBWarehouse, WarehouseUnavailable


def conform_lists(table: pa.Table) -> pa.Table:
    """`table` with exactly the lists' columns, order and types."""
    return table.select(list(LIST_COLUMNS)).cast(LISTS_SCHEMA)


class RecommendationStore(dg.ConfigurableResource, ABC):
    """The served lists, one row per (day, user, rank), replaced a day at a time."""

    @abstractmethod
    def replace_day(self, day: date, lists: pa.Table) -> int:
        """Make `day`'s rows exactly `lists` (every row of which is that day's); returns rows written."""

    @abstractmethod
    def read_day(self, day: date, user_id: str | None = None) -> pa.Table:
        """`day`'s rows (only `user_id`'s when given), by user and rank; empty when none were written."""

    @property
    @abstractmethod
    def table_ref(self) -> str:
        """Human-readable name of the table, for messages and metadata."""


def _check_day(day: date, lists: pa.Table) -> pa.Table:
    lists = conform_lists(lists)
    other = set(lists["day"].unique().to_pylist()) - {day}
    if other:
        raise ValueError(f"lists for {day} hold rows of other days: {sorted(map(str, other))}")
    return lists


class DuckDBRecommendationStore(RecommendationStore):
    """Embedded: a table in the warehouse's DuckDB file."""

    path: str = Field(description="Path of the DuckDB database file (the warehouse's).")
    table: str = Field(default="recommendations", description="Name of the served lists' table.")
    lock_timeout_seconds: float = Field(default=30.0, description="How long to wait for another writer's lock.")

    @property
    def table_ref(self) -> str:
        return f"duckdb:{self.path}#{self.table}"

    def _warehouse(self) -> DuckDBWarehouse:
        # The warehouse owns connecting, locking and its error messages; the lists reuse them.
        return DuckDBWarehouse(path=self.path, table=self.table, lock_timeout_seconds=self.lock_timeout_seconds)

    def replace_day(self, day: date, lists: pa.Table) -> int:
        staged = _check_day(day, lists)
        with self._warehouse()._connect(read_only=False) as con:
            con.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.table} (
                    day DATE, user_id VARCHAR, rank INTEGER, item_id VARCHAR, score DOUBLE,
                    model_version VARCHAR, model_family VARCHAR, source VARCHAR)"""
            )
            con.register("staged_lists", staged)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM {self.table} WHERE day = ?", [day])
                con.execute(f"INSERT INTO {self.table} SELECT * FROM staged_lists")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return staged.num_rows

    def read_day(self, day: date, user_id: str | None = None) -> pa.Table:
        if not Path(self.path).exists():
            raise WarehouseUnavailable(f"warehouse file {self.path} does not exist; seed or import events first")
        with self._warehouse()._connect(read_only=True) as con:
            exists = con.sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", params=[self.table]
            ).fetchall()[0][0]
            if not exists:
                return LISTS_SCHEMA.empty_table()
            where, params = ("day = ?", [day]) if user_id is None else ("day = ? AND user_id = ?", [day, user_id])
            table = con.sql(
                f"SELECT {', '.join(LIST_COLUMNS)} FROM {self.table} WHERE {where} ORDER BY user_id, rank",
                params=params,
            ).to_arrow_table()
        return conform_lists(table)
