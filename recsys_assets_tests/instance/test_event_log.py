"""The local instance's batched SQLite event log records a range run exactly as Dagster's own SQLite storage does.

Both instances are real SQLite instances in a temporary DAGSTER_HOME (`instance_for_test`); the only
difference is the `event_log_storage` the project's dagster.yaml names.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow  # a run worker process: Python and Dagster start, seconds
def test_a_run_worker_writes_a_range_in_one_batch_with_nothing_set_in_its_environment(tmp_path):
    """The run worker `dagster dev`'s launcher starts (`dagster api execute_run`), with neither Dagster variable
    in its environment: the local instance's event log itself asks for batches and one planned event."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._grpc.types import ExecuteRunArgs

    from recsys_assets_tests.instance.range_run import DAYS

    count_file = tmp_path / "writes.txt"
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    config["event_log_storage"] = {
        "module": "recsys_assets_tests.instance.range_run",
        "class": "CountingEventLogStorage",
        "config": {"base_dir": str(tmp_path / "history"), "count_file": str(count_file)},
    }
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DAGSTER_EVENT_BATCH_SIZE", "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS")
    }
    environment |= {"DAGSTER_HOME": str(tmp_path), "PYTHONPATH": str(REPO_ROOT)}
    job = ReconstructableRepository.for_module(
        "recsys_assets_tests.instance.range_run", "defs", working_directory=str(REPO_ROOT)
    ).get_reconstructable_job("daily_job")
    keys = DAYS.get_partition_keys()
    # The run is created as the webserver or the daemon creates it: on the instance dagster.yaml describes.
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        run = instance.create_run_for_job(
            job.get_definition(),
            tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
            job_code_origin=job.get_python_origin(),
        )
        args = ExecuteRunArgs(job_origin=job.get_python_origin(), run_id=run.run_id, instance_ref=instance.get_ref())
        worker = subprocess.run(
            [sys.executable, "-m", "dagster", "api", "execute_run", dg.serialize_value(args)],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert worker.returncode == 0, worker.stderr[-2000:]
        finished = instance.get_run_by_id(run.run_id)
        assert finished is not None and finished.status == dg.DagsterRunStatus.SUCCESS
        planned = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
        ).records
        assert len(planned) == 1  # one for the range, not one per day
        assert sorted(instance.get_materialized_partitions(dg.AssetKey("daily"))) == keys
    assert count_file.read_text().split("\n")[:-1] == [f"batch {len(keys)}"]


@dg.asset(
    partitions_def=DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[dg.AssetCheckSpec("positive", asset="checked")],
)
def checked(context: dg.AssetExecutionContext):
    """A range-run asset with a check result per day, like `interactions`."""
    yield dg.MaterializeResult()
    for key in context.partition_keys:
        yield dg.AssetCheckEvaluation(asset_key=context.asset_key, check_name="positive", passed=True, partition=key)
    yield dg.AssetCheckResult(check_name="positive", passed=True)


def _check_history(instance: dg.DagsterInstance, run_id: str) -> list[tuple]:
    """What the UI's check tab reads of `checked`'s results: day, status, run, and the day's materialization."""
    executions = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(checked.key, "positive"), limit=100
    )
    return sorted(
        (execution.partition or "", execution.status.value, execution.run_id == run_id, execution.event is not None)
        for execution in executions
    )


@pytest.mark.slow
def test_per_day_check_results_share_a_transaction_read_back_like_dagsters_and_the_live_view_sees_events(tmp_path):
    keys = DAYS.get_partition_keys()[:5]
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as dagsters:
        reference = dg.materialize([checked], instance=dagsters, tags=tags)
        expected = _check_history(dagsters, reference.run_id)
    with dg.instance_for_test(overrides={"event_log_storage": PROJECT_EVENT_LOG}, temp_dir=str(tmp_path)) as instance:
        storage = instance.event_log_storage
        assert isinstance(storage, BatchedSqliteEventLogStorage)
        run_transactions = []
        run_connection = storage.run_connection

        def counting_run_connection(run_id=None):
            run_transactions.append(run_id)
            return run_connection(run_id)

        storage.run_connection = counting_run_connection  # type: ignore[method-assign]
        result = dg.materialize([checked], instance=instance, tags=tags)
        storage.run_connection = run_connection  # type: ignore[method-assign]
        assert result.success
        # Every day's result reached the index, as with Dagster's own storage; not one transaction each.
        assert [day for day, *_ in expected] == ["", *keys]
        assert _check_history(instance, result.run_id) == expected
        records = storage.get_records_for_run(result.run_id).records
        checks = [
            r for r in records if r.event_log_entry.dagster_event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ]
        assert len(checks) == len(keys) + 1
        assert len(run_transactions) <= len(records) - len(checks) + 1, "a check result took a transaction of its own"

        # The UI's live view of a running run watches the run's .db file: a new event must reach it.
        seen: list[str] = []
        run_id = result.run_id

        def on_event(entry, _cursor):
            seen.append(entry.message)

        storage.watch(run_id, storage.get_records_for_run(run_id).cursor, on_event)
        try:
            instance.report_engine_event("still running", instance.get_run_by_id(run_id))
            deadline = time.monotonic() + 10
            while not seen and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            storage.end_watch(run_id, on_event)
        assert "still running" in seen


def _shard_schema(path: Path) -> dict:
    """What makes a run shard Dagster's: its tables and indexes, its alembic revision and its journal mode."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as conn:
        return {
            "schema": sorted(row[0] for row in conn.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")),
            "revision": conn.execute("SELECT version_num FROM alembic_version").fetchall(),
            "journal": conn.execute("PRAGMA journal_mode").fetchone(),
        }


def test_a_new_run_shard_is_a_copy_of_the_empty_one_dagster_makes(tmp_path):
    from dagster._core.storage.event_log import SqliteEventLogStorage

    ours = BatchedSqliteEventLogStorage(str(tmp_path / "ours"))
    theirs = SqliteEventLogStorage(str(tmp_path / "theirs"))
    for storage in (ours, theirs):
        for run_id in ("run-a", "run-b"):
            with storage.run_connection(run_id):
                pass
    expected = _shard_schema(tmp_path / "theirs" / "run-a.db")
    assert expected["revision"], "Dagster stamps its run shards"
    for run_id in ("run-a", "run-b"):
        assert _shard_schema(tmp_path / "ours" / f"{run_id}.db") == expected
    # One template, hidden from Dagster's listing of runs; nothing half-made left beside the shards.
    assert sorted(ours.get_all_run_ids()) == ["run-a", "run-b"]
    assert sorted(p.name for p in (tmp_path / "ours").iterdir() if not p.name.startswith("index")) == [
        f".run-shard-dagster-{dg.__version__}.db",
        "run-a.db",
        "run-b.db",
    ]
    ours.dispose()
    theirs.dispose()
