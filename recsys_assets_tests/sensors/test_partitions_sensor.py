"""The new-partition sensor: what each tick requests, the cursor it keeps, and how outages show."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pytest

from recsys_assets.definitions import ASSETS
from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.jobs import interactions_job, retrain_job
from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse
from recsys_assets.resources.warehouse import (
    DuckDBWarehouse,
    Warehouse,
    WarehousePartition,
)
from recsys_assets.sensors.partitions import (
    LAST_MODIFIED_TAG,
    MAX_RUN_REQUESTS_PER_TICK,
    TRIGGER_TAG,
    Cursor,
    WarehouseListingError,
    build_new_interaction_partitions,
    parse_cursor,
    plan_tick,
)
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.environment import local_resources
from recsys_assets_tests.support.standins.bigquery import BigQueryStandIn, free_port

DAY = datetime(2026, 5, 4, tzinfo=UTC)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 5, 10, 8, 0, tzinfo=UTC)


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


def part(day: str, modified: datetime = T0, rows: int = 10) -> WarehousePartition:
    return WarehousePartition(day.replace("-", ""), rows, modified)


# -- the decision, as a pure function ----------------------------------------------------------------------


def test_new_days_then_nothing_then_a_late_change():
    first = plan_tick([part("2026-05-04"), part("2026-05-05")], Cursor(), {}, NOW)
    assert [(c.partition_key, c.reason) for c in first.changes] == [
        ("2026-05-04", "new_partition"),
        ("2026-05-05", "new_partition"),
    ]
    assert first.changes[0].run_key == "2026-05-04:2026-05-10T08:00:00+00:00"
    # The cursor is one watermark, whatever the number of days.
    assert first.cursor == Cursor(T0.isoformat(), {})

    done = {"2026-05-04": T0 + timedelta(hours=1), "2026-05-05": T0 + timedelta(hours=1)}
    unchanged = plan_tick([part("2026-05-04"), part("2026-05-05")], first.cursor, done, NOW)
    assert unchanged.changes == [] and unchanged.cursor == first.cursor

    later = T0 + timedelta(days=3)
    late = plan_tick([part("2026-05-04", later), part("2026-05-05")], first.cursor, done, NOW)
    assert [(c.partition_key, c.reason, c.run_key) for c in late.changes] == [
        ("2026-05-04", "late_data", f"2026-05-04:{later.isoformat()}")
    ]
    assert late.cursor == Cursor(later.isoformat(), {})


def test_a_never_extracted_day_is_requested_even_behind_the_watermark():
    behind = plan_tick([part("2026-05-04"), part("2026-05-05")], Cursor((T0 + timedelta(days=1)).isoformat()), {}, NOW)
    assert [c.partition_key for c in behind.changes] == ["2026-05-04", "2026-05-05"]


def test_days_extracted_since_their_last_change_are_not_requested():
    extracted = {"2026-05-04": T0 + timedelta(minutes=5), "2026-05-05": T0 - timedelta(minutes=5)}
    plan = plan_tick([part("2026-05-04"), part("2026-05-05"), part("2026-05-06")], Cursor(), extracted, NOW)
    assert [(c.partition_key, c.reason) for c in plan.changes] == [
        ("2026-05-05", "late_data"),
        ("2026-05-06", "new_partition"),
    ]
    assert plan.up_to_date == 1 and plan.cursor == Cursor(T0.isoformat(), {})


def test_work_per_tick_is_bounded_oldest_first_and_the_rest_follows():
    days = [(DAY - timedelta(days=i)).date().isoformat() for i in range(45)]
    partitions = [part(day) for day in days]
    first = plan_tick(partitions, Cursor(), {}, NOW)
    assert len(first.changes) == MAX_RUN_REQUESTS_PER_TICK == 30 and first.deferred == 15
    assert [c.partition_key for c in first.changes] == sorted(days)[:30]
    # Same modification time as the deferred days: the watermark waits, the requested days are listed.
    assert first.cursor.through is None and sorted(first.cursor.also) == sorted(days)[:30]
    done = {day: T0 + timedelta(hours=1) for day in sorted(days)[:30]}
    second = plan_tick(partitions, first.cursor, done, NOW)
    assert [c.partition_key for c in second.changes] == sorted(days)[30:] and second.deferred == 0
    assert second.cursor == Cursor(T0.isoformat(), {})
    all_done = {day: T0 + timedelta(hours=1) for day in days}
    assert plan_tick(partitions, second.cursor, all_done, NOW).changes == []


def test_days_outside_the_daily_partitions_are_ignored_until_they_are_inside():
    today = NOW.date().isoformat()
    partitions = [part("1994-12-31"), part(today), part("2026-06-02"), part("2026-02-31"), part("2026-05-31")]
    plan = plan_tick(partitions, Cursor(), {}, NOW)
    assert [c.partition_key for c in plan.changes] == ["2026-05-31"] and plan.ignored == 4
    # Today holds the watermark back, so it is still seen once it is complete.
    assert plan.cursor == Cursor(None, {"2026-05-31": T0.isoformat()})
    tomorrow = plan_tick(partitions, plan.cursor, {}, NOW + timedelta(days=1))
    assert [(c.partition_key, c.reason) for c in tomorrow.changes] == [(today, "new_partition")]


def test_a_day_that_disappears_and_returns_is_extracted_again():
    seen = plan_tick([part("2026-05-04"), part("2026-05-05")], Cursor(), {}, NOW).cursor
    done = {"2026-05-04": T0 + timedelta(hours=1), "2026-05-05": T0 + timedelta(hours=1)}
    gone = plan_tick([part("2026-05-05")], seen, done, NOW)
    assert gone.changes == []
    back = plan_tick([part("2026-05-04", T0 + timedelta(days=1)), part("2026-05-05")], gone.cursor, done, NOW)
    assert [(c.partition_key, c.reason) for c in back.changes] == [("2026-05-04", "late_data")]


def test_cursor_round_trip_and_refusal():
    assert parse_cursor(None) == Cursor()
    cursor = Cursor("2026-05-10T08:00:00+00:00", {"2026-05-04": "x"})
    assert parse_cursor(cursor.encode()) == cursor
    for raw in ('["not", "a", "dict"]', '{"2026-05-04": "x"}', '{"through": 3, "also": {}}'):
        with pytest.raises(ValueError):
            parse_cursor(raw)


# -- the sensor, tick by tick, on real warehouses --------------------------------------------------------------

new_interaction_partitions = build_new_interaction_partitions(SETTINGS)


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def defs(tmp_path: Path) -> dg.Definitions:
    return dg.Definitions(
        assets=ASSETS,
        jobs=[interactions_job, retrain_job],
        sensors=[new_interaction_partitions],
        resources=local_resources(tmp_path),
    )


class Ticker:
    """Evaluates the sensor the way the daemon does: each tick starts from the cursor the last one stored."""

    def __init__(self, instance: dg.DagsterInstance, defs: dg.Definitions) -> None:
        self.instance, self.defs, self.cursor = instance, defs, None

    def tick(self, warehouse: Warehouse) -> dg.SensorResult:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"warehouse": warehouse}, definitions=self.defs
        )
        data = new_interaction_partitions.evaluate_tick(context)
        if data.cursor is not None:
            self.cursor = data.cursor
        return data

    def requested(self, warehouse: Warehouse) -> list[tuple[str, str]]:
        data = self.tick(warehouse)
        assert data.skip_message is None, data.skip_message
        self.complete(data.run_requests)
        return [(r.partition_key, r.tags[TRIGGER_TAG]) for r in data.run_requests]

    def complete(self, run_requests: list[dg.RunRequest]) -> None:
        """Record the requested extracts as done, as their runs would (without paying for the runs)."""
        for request in run_requests:
            self.instance.report_runless_asset_event(
                dg.AssetMaterialization("interactions", partition=request.partition_key)
            )


class BrokenWarehouse(DuckDBWarehouse):
    """A warehouse whose listing fails with an arbitrary (non-warehouse) error."""

    def list_partitions(self) -> list[WarehousePartition]:
        raise OSError("disk on fire")


def test_sensor_targets_the_extract_job():
    assert new_interaction_partitions.job_name == "interactions_job"
    assert new_interaction_partitions.minimum_interval_seconds == 300


@pytest.mark.slow
def test_ticks_on_duckdb_new_days_nothing_late_data_and_an_outage(tmp_path, instance, defs):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    warehouse.replace_days(pa.concat_tables([events(DAY, 3), events(DAY + timedelta(days=1), 2)]))
    ticker = Ticker(instance, defs)

    first = ticker.tick(warehouse)
    ticker.complete(first.run_requests)
    modified = {p.partition_key: p.last_modified_time.isoformat() for p in warehouse.list_partitions()}
    assert [(r.partition_key, r.run_key, r.tags[LAST_MODIFIED_TAG]) for r in first.run_requests] == [
        (key, f"{key}:{iso}", iso) for key, iso in sorted(modified.items())
    ]
    assert parse_cursor(ticker.cursor) == Cursor(max(modified.values()), {})

    quiet = ticker.tick(warehouse)
    assert quiet.run_requests == [] and "no new or changed days among 2 partitions" in quiet.skip_message

    time.sleep(0.01)
    warehouse.replace_days(events(DAY, 5, user="late"))  # late events for an old day
    assert ticker.requested(warehouse) == [("2026-05-04", "late_data")]
    warehouse.replace_days(events(DAY + timedelta(days=2), 4))
    assert ticker.requested(warehouse) == [("2026-05-06", "new_partition")]

    # An outage fails the tick and stores nothing; the change made meanwhile is requested afterwards.
    before = ticker.cursor
    warehouse.replace_days(events(DAY + timedelta(days=3), 4))
    failures = {
        r"could not list the partitions of duckdb:.*w\.duckdb#events: OSError: disk on fire": BrokenWarehouse(
            path=str(tmp_path / "w.duckdb")
        ),
        r"could not list warehouse partitions: warehouse file .*gone\.duckdb does not exist": DuckDBWarehouse(
            path=str(tmp_path / "gone.duckdb")
        ),
    }
    for message, broken in failures.items():
        with pytest.raises(WarehouseListingError, match=message):
            ticker.tick(broken)
        assert ticker.cursor == before
    assert ticker.requested(warehouse) == [("2026-05-07", "new_partition")]
    assert ticker.tick(warehouse).skip_message


@pytest.mark.slow
def test_days_materialized_elsewhere_are_not_extracted_again(tmp_path, instance, defs):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    warehouse.replace_days(pa.concat_tables([events(DAY, 3), events(DAY + timedelta(days=1), 2)]))
    resources = local_resources(tmp_path)
    resources["warehouse"] = warehouse
    # A backfill (or the CLI) extracted the first day before the sensor was switched on.
    assert dg.materialize(
        ASSETS, selection=["interactions"], partition_key="2026-05-04", resources=resources, instance=instance
    ).success
    assert Ticker(instance, defs).requested(warehouse) == [("2026-05-05", "new_partition")]


@pytest.mark.slow
def test_unreadable_cursor_starts_over_without_failing(tmp_path, instance, defs):
    warehouse = DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    warehouse.replace_days(events(DAY, 2))
    ticker = Ticker(instance, defs)
    ticker.cursor = "{not json"
    assert ticker.requested(warehouse) == [("2026-05-04", "new_partition")]


@pytest.mark.slow
def test_unreachable_bigquery_fails_the_tick_and_keeps_the_cursor(instance, defs):
    unreachable = BigQueryWarehouse(
        project="recsys-test",
        dataset="events_ds",
        endpoint=f"http://127.0.0.1:{free_port()}",
        anonymous_credentials=True,
        retry_deadline_seconds=0.5,
    )
    ticker = Ticker(instance, defs)
    ticker.cursor = Cursor(T0.isoformat()).encode()
    with pytest.raises(
        WarehouseListingError,
        match=r"BigQuery at http://127\.0\.0\.1:\d+ unavailable for "
        r"bigquery:recsys-test\.events_ds\.events \(listing partitions\)",
    ):
        ticker.tick(unreachable)
    assert parse_cursor(ticker.cursor) == Cursor(T0.isoformat())


@pytest.mark.slow
def test_ticks_on_the_bigquery_emulator(bigquery_standin: BigQueryStandIn, instance, defs):
    warehouse = bigquery_standin.warehouse()
    warehouse.replace_days(pa.concat_tables([events(DAY, 3), events(DAY + timedelta(days=1), 2)]))
    ticker = Ticker(instance, defs)

    first = ticker.tick(warehouse)
    ticker.complete(first.run_requests)
    assert [(r.partition_key, r.tags[TRIGGER_TAG]) for r in first.run_requests] == [
        ("2026-05-04", "new_partition"),
        ("2026-05-05", "new_partition"),
    ]
    modified = {p.partition_key: p.last_modified_time.isoformat() for p in warehouse.list_partitions()}
    assert [r.run_key for r in first.run_requests] == [f"{k}:{v}" for k, v in sorted(modified.items())]
    assert "no new or changed days among 2 partitions of bigquery:" in ticker.tick(warehouse).skip_message

    warehouse.replace_days(events(DAY + timedelta(days=2), 4))
    assert ticker.requested(warehouse) == [("2026-05-06", "new_partition")]

    # The emulator goes away (same dataset, nothing listening): the tick fails, the cursor holds.
    before = ticker.cursor
    down = bigquery_standin.warehouse(endpoint=f"http://127.0.0.1:{free_port()}", retry_deadline_seconds=0.5)
    with pytest.raises(WarehouseListingError, match="unavailable"):
        ticker.tick(down)
    assert ticker.cursor == before
    warehouse.replace_days(events(DAY + timedelta(days=3), 1))
    assert ticker.requested(warehouse) == [("2026-05-07", "new_partition")]
    # A missing table is a failed tick too, not an empty warehouse.
    with pytest.raises(WarehouseListingError, match=r"\.absent \(listing partitions\)"):
        ticker.tick(bigquery_standin.warehouse(table="absent"))
