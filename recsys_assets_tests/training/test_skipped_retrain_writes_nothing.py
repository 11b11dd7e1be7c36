"""A retrain skipped as unchanged is decided before anything is rebuilt: it writes no per-run folder, and
what changes (a late row, a split setting, `force: true`) still retrains and writes.

Whole `run`s (`materialize_partition`: the interactions job, then `retrain_job`) on the embedded default,
with the project's own event log, as the CLI runs them; folders are counted on disk.
"""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest

from recsys_assets.cli.pipeline import materialize_partition
from recsys_assets.domain.synthetic import SMALL_SPEC
from recsys_assets_tests.support.data import add_late_row
from recsys_assets_tests.support.environment import (
    FAST_SELECTION,
    FORCED_SELECTION,
    local_resources,
    seed,
)

pytestmark = pytest.mark.slow  # four full retrains on a small set: about a minute

PARTITION = SMALL_SPEC.end_date.isoformat()
# The per-run folders a retrain rebuilds before training; the day's extracts are shared, not per run.
REBUILT = ("items", "item_features", "training_set", "baseline_models")
SKIPPED_TAG = {"recsys/retrain": "skipped: unchanged"}


def run_folders(root: Path) -> dict[str, set[str]]:
    """The run ids that own a folder of each rebuilt asset for the partition, as on disk."""
    folders = root / "artifacts"
    return {asset: {p.name for p in (folders / asset / PARTITION / "runs").glob("*")} for asset in REBUILT}


def with_split(cut_days: int) -> dict:
    return {"ops": {**FAST_SELECTION["ops"], "training_set": {"config": {"cut_days": cut_days}}}}


def step_events(instance: dg.DagsterInstance, run_id: str) -> tuple[set[str], set[str]]:
    """The steps that succeeded and the steps Dagster skipped in `run_id`."""
    succeeded, skipped = set(), set()
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is not None and event.is_step_success:
            succeeded.add(event.step_key)
        if event is not None and event.is_step_skipped:
            skipped.add(event.step_key)
    return succeeded, skipped


def test_an_unchanged_retrain_writes_no_folder_and_every_change_writes_again(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    first = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert first.success and first.bundle is not None and first.skipped is None, first.failures
    built = run_folders(tmp_path)
    assert all(len(runs) == 1 for runs in built.values()), built

    # Unchanged: the second run stops at its first step; not one new folder, and it says why.
    again = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert again.success and again.bundle is None and again.skipped is not None, again.failures
    assert "unchanged since run" in again.skipped and "before rebuilding" in again.skipped
    assert run_folders(tmp_path) == built
    (skipped_run,) = instance.get_runs(dg.RunsFilter(tags=SKIPPED_TAG))
    succeeded, skipped = step_events(instance, skipped_run.run_id)
    assert succeeded == {"items"}  # read the catalogue, judged it and its checks, wrote nothing
    assert {"item_features", "training_set", "baseline_models", "trained_model", "model_release"} <= skipped
    observed = instance.fetch_observations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("trained_model"), asset_partitions=[PARTITION]), limit=1
    ).records
    assert observed and observed[0].run_id == skipped_run.run_id

    # force: true retrains the same data and writes again, whatever the last run was ...
    forced = materialize_partition(PARTITION, resources, instance, run_config=FORCED_SELECTION)
    assert forced.success and forced.skipped is None and forced.bundle is not None, forced.failures
    after_forced = run_folders(tmp_path)
    assert all(len(after_forced[a] - built[a]) == 1 for a in REBUILT), after_forced
    # ... and the run after it is skipped again, against the forced one, with nothing written.
    assert materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION).skipped is not None
    assert run_folders(tmp_path) == after_forced

    # Another split setting is another training set: built, and the retrain runs (its gate decides the release).
    resplit = materialize_partition(PARTITION, resources, instance, run_config=with_split(3))
    assert resplit.skipped is None and resplit.report is not None, resplit.failures
    after_resplit = run_folders(tmp_path)
    assert all(len(after_resplit[a] - after_forced[a]) == 1 for a in REBUILT), after_resplit

    # A late row in a window day: its extract is written again (it is the record) and the retrain runs.
    day = SMALL_SPEC.end_date - timedelta(days=3)
    add_late_row(resources["warehouse"], day)
    changed = materialize_partition(PARTITION, resources, instance, run_config=with_split(3))
    assert changed.skipped is None and changed.report is not None, changed.failures
    assert changed.extracted == (day.isoformat(), day.isoformat())
    after_late = run_folders(tmp_path)
    assert all(len(after_late[a] - after_resplit[a]) == 1 for a in REBUILT), after_late
    assert len(instance.get_runs(dg.RunsFilter(tags=SKIPPED_TAG))) == 2
