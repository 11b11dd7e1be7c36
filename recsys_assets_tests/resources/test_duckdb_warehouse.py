"""The embedded DuckDB warehouse: day-idempotent writes, partition metadata, clear errors."""

import time
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.resources.warehouse import DuckDBWarehouse, WarehouseUnavailable

DAY = datetime(2026, 5, 4, tzinfo=UTC)


def events(day: datetime, n: int, user: str = "u") -> pa.Table:
    return pa.table(
        {
            "user_id": [f"{user}{i}" for i in range(n)],
            "item_id": ["j1"] * n,
            "event_type": ["view"] * n,
            "weight": [1.0] * n,
            "event_ts": [day + timedelta(minutes=i) for i in range(n)],
        },
        schema=EVENTS_SCHEMA,
    )


def test_replace_days_is_idempotent_per_day_and_reads_half_open_ranges(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    assert warehouse.replace_days(pa.concat_tables([events(DAY, 3), events(DAY + timedelta(days=1), 2)])) == {
        "2026-05-04": 3,
        "2026-05-05": 2,
    }
    warehouse.replace_days(events(DAY, 4, user="v"))  # replaces 05-04 only
    first_day = warehouse.read_events(DAY, DAY + timedelta(days=1))
    assert first_day.schema == EVENTS_SCHEMA
    assert first_day["user_id"].to_pylist() == ["v0", "v1", "v2", "v3"]
    assert warehouse.read_events(DAY + timedelta(days=1), DAY + timedelta(days=2)).num_rows == 2
    assert [(p.partition_key, p.total_rows) for p in warehouse.list_partitions()] == [
        ("2026-05-04", 4),
        ("2026-05-05", 2),
    ]


def test_rewriting_a_day_moves_its_last_modified_time(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    warehouse.replace_days(pa.concat_tables([events(DAY, 3), events(DAY + timedelta(days=1), 2)]))
    before = {p.partition_id: p.last_modified_time for p in warehouse.list_partitions()}
    time.sleep(0.01)
    warehouse.replace_days(events(DAY, 5))
    after = {p.partition_id: p.last_modified_time for p in warehouse.list_partitions()}
    assert after["20260504"] > before["20260504"] and after["20260505"] == before["20260505"]


def test_missing_warehouse_is_reported_not_created(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "absent.duckdb"))
    with pytest.raises(WarehouseUnavailable, match=r"absent\.duckdb does not exist"):
        warehouse.read_events(DAY, DAY + timedelta(days=1))
    assert not (tmp_path / "absent.duckdb").exists()


def test_wrong_columns_are_refused(tmp_path):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    with pytest.raises(ValueError, match=r"missing columns \['event_ts'\]"):
        warehouse.replace_days(events(DAY, 1).drop(["event_ts"]))
