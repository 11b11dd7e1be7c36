"""Item catalogue interface (job postings in the warehouse), with DuckDB and BigQuery implementations.

Mirrors `Warehouse` for interactions: the embedded default is a table in the same DuckDB file, the
cloud option a table in the same BigQuery dataset. The catalogue is one table that is replaced as a
whole (a posting's closing date changes after it was first written, so day partitions of postings
would not be append-only); the `items` asset keeps the history by snapshotting it per day.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import date
from pathlib import Path

import dagster as dg
import pyarrow as pa
from pydantic import Field

from recsys_assets.domain.items import ITEM_COLUMNS, ITEMS_SCHEMA, conform_items
from recsys_assets.resources.warehouse import DuckDBWarehouse, WarehouseUnavailable


class ItemCatalogue(dg.ConfigurableResource, ABC):
    """The postings table: item id, text, category, location and open window."""

    @abstractmethod
    def read_items(self, posted_until: date) -> pa.Table:
        """Postings posted on or before `posted_until`, in the catalogue contract's schema."""

    @abstractmethod
    def replace_items(self, items: pa.Table) -> int:
        """Upsert `items` by item id (a re-imported posting replaces its row); returns rows written."""

    @property
    @abstractmethod
    def table_ref(self) -> str:
        """Human-readable name of the catalogue table, for messages and metadata."""


class DuckDBItemCatalogue(ItemCatalogue):
    """Embedded catalogue: a table in the warehouse's DuckDB file."""

    path: str = Field(description="Path of the DuckDB database file (the warehouse's).")
    table: str = Field(default="items", description="Name of the catalogue table.")
    lock_timeout_seconds: float = Field(default=30.0, description="How long to wait for another writer's lock.")

    @property
    def table_ref(self) -> str:
        return f"duckdb:{self.path}#{self.table}"

    def _warehouse(self) -> DuckDBWarehouse:
        # The warehouse owns connecting, locking and its error messages; the catalogue reuses them.
        return DuckDBWarehouse(path=self.path, table=self.table, lock_timeout_seconds=self.lock_timeout_seconds)

    def read_items(self, posted_until: date) -> pa.Table:
        if not Path(self.path).exists():
            raise WarehouseUnavailable(f"warehouse file {self.path} does not exist; seed or import items first")
        with self._warehouse()._connect(read_only=True) as con:
            exists = con.sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", params=[self.table]
            ).fetchall()[0][0]
            if not exists:
                return ITEMS_SCHEMA.empty_table()
            table = con.sql(
                f"SELECT {', '.join(ITEM_COLUMNS)} FROM {self.table} "
                "WHERE posted_date IS NULL OR posted_date <= ? ORDER BY item_id",
                params=[posted_until],
            ).to_arrow_table()
        return conform_items(table)

    def replace_items(self, items: pa.Table) -> int:
        staged = conform_items(items)
        with self._warehouse()._connect(read_only=False) as con:
            con.execute(
                f"""CREATE TABLE IF NOT EXISTS {self.table} (
                    item_id VARCHAR, title VARCHAR, description VARCHAR, category VARCHAR,
                    location VARCHAR, posted_date DATE, closed_date DATE)"""
            )
            # No key constraint: a duplicated id is reported by the `items` asset's check, not refused here.
            con.register("staged_items", staged)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"DELETE FROM {self.table} WHERE item_id IN (SELECT item_id FROM staged_items)")
                con.execute(f"INSERT INTO {self.table} SELECT * FROM staged_items")
                con.execute("COMMIT")
            except Exception:
                con.execute("ROLLBACK")
                raise
        return staged.num_rows
