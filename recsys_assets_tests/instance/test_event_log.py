"""The local instance's batched SQLite event log records a range run exactly as Dagster's own SQLite storage does.

Both instances are real SQLite instances in a temporary DAGSTER_HOME (`instance_for_test`); the only
difference is the `event_log_storage` the project's dagster.yaml names.
"""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from recsys_assets.instance.event_log import BatchedSqliteEventLogStorage
from recsys_assets_tests.support.environment import PROJECT_EVENT_LOG, REPO_ROOT

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-03-01")


@dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def daily(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """A range-run daily asset, like `interactions`."""
    return dg.MaterializeResult(metadata={"days": len(context.partition_keys)}, data_version=dg.DataVersion("v1"))


def run_range(instance: dg.DagsterInstance) -> list[str]:
    """Materialize every day in one range run, counting the per-event writes of materializations."""
    storage = instance.event_log_storage
    single_writes: list[str] = []
    store_event = storage.store_event

    def counting_store_event(event):
        if event.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            single_writes.append(event.dagster_event.partition)
        store_event(event)

    storage.store_event = counting_store_event  # type: ignore[method-assign]
    keys = DAYS.get_partition_keys()
    result = dg.materialize(
        [daily],
        instance=instance,
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
    )
    assert result.success
    return single_writes


def read_back(instance: dg.DagsterInstance) -> dict:
    """What the UI, sensors and the retrain's skip logic read about the asset."""
    key = daily.key
    records = instance.fetch_materializations(key, limit=1000).records
    middle = instance.get_latest_data_version_record(key, partition_key="2026-01-31")
    latest = instance.get_latest_materialization_event(key)
    asset_record = instance.get_asset_records([key])[0].asset_entry
    return {
        "materialized": sorted(instance.get_materialized_partitions(key)),
        "records": sorted(record.partition_key for record in records),
        "middle_day_version": middle.event_log_entry.tags.get("dagster/data_version") if middle else None,
        "latest_partition": latest.dagster_event.partition if latest and latest.dagster_event else None,
        "asset_record_partition": asset_record.last_materialization.dagster_event.partition
        if asset_record.last_materialization and asset_record.last_materialization.dagster_event
        else None,
    }


def test_a_range_run_is_written_as_one_batch_and_reads_back_like_dagsters_own_storage():
    with dg.instance_for_test() as default:
        default_single_writes = run_range(default)
        expected = read_back(default)
    with dg.instance_for_test(overrides={"event_log_storage": PROJECT_EVENT_LOG}) as batched:
        assert isinstance(batched.event_log_storage, BatchedSqliteEventLogStorage)
        batched_single_writes = run_range(batched)
        got = read_back(batched)

    days = DAYS.get_partition_keys()
    assert len(default_single_writes) == len(days)  # Dagster's SQLite storage: one write per day
    assert batched_single_writes == []  # every day went through the batch
    assert got == expected
    assert got["materialized"] == got["records"] == days
    assert got["middle_day_version"] == "v1" and got["latest_partition"] == got["asset_record_partition"] == days[-1]


def test_the_project_instance_uses_it_under_dagster_home_and_says_what_is_missing(tmp_path, monkeypatch):
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, BatchedSqliteEventLogStorage)
        # Dagster's default folder for the event log, so an existing instance's history stays readable.
        assert Path(storage._base_dir) == tmp_path / "history" / "runs"

    monkeypatch.delenv("DAGSTER_HOME")
    with pytest.raises(ValueError, match="set DAGSTER_HOME or give base_dir"):
        BatchedSqliteEventLogStorage.from_config_value(None, {})
