"""Operating safely, through the whole graph: own-run artefacts, one run per partition, robust
champion comparison, and a failed run whose last line is its cause."""

import json
import os
import subprocess

import dagster as dg
import pyarrow.compute as pc
import pytest

from recsys_assets.cli.pipeline import PartitionBusyError, materialize_partition
from recsys_assets.cli.run import report
from recsys_assets.domain.synthetic import SMALL_SPEC, generate_events
from recsys_assets.resources.model_store import LocalModelStore, ModelStoreError
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.environment import (
    FAST_SELECTION,
    FORCED_SELECTION,
    local_resources,
    merge_release,
    seed,
)

PARTITION = SMALL_SPEC.end_date.isoformat()
# A weak challenger: only all-time popularity may be selected, and the baselines gate is off.
WEAK = {
    "ops": {
        **FAST_SELECTION["ops"],
        "trained_model": {"config": {"families": ["popularity"], "trials_per_family": 1}},
        "model_evaluation": {"config": {"baseline_tolerance": 1.0}},
    }
}


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def bundle_family(tmp_path, version: str) -> str:
    manifest = tmp_path / "model_store" / "models" / SETTINGS.model_name / version / "manifest.json"
    return json.loads(manifest.read_text())["model"]["family"]


def test_each_run_builds_its_bundle_from_its_own_files_and_a_blocked_release_says_why(tmp_path, instance, capsys):
    resources = local_resources(tmp_path)
    seed(resources)
    champion = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert champion.success and champion.bundle
    merge_release(resources, champion.bundle.version)
    challenger = materialize_partition(PARTITION, resources, instance, run_config=WEAK)
    assert challenger.bundle and not challenger.success

    # Two runs of one partition: separate folders, and each bundle holds its own run's model.
    runs = sorted(p.name for p in (tmp_path / "artifacts" / "trained_model" / PARTITION / "runs").iterdir())
    assert len(runs) == 2
    assert bundle_family(tmp_path, champion.bundle.version) != "popularity"
    assert bundle_family(tmp_path, challenger.bundle.version) == "popularity"

    # The CLI's last line names the blocking check and the numbers; the bundle is not called released.
    assert report(challenger) == 1
    captured = capsys.readouterr()
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("release blocked: not_worse_than_champion: challenger ndcg@10 0.")
    assert f"champion {champion.bundle.version}" in last and "users), significantly worse than the champion" in last
    assert f"model bundle {challenger.bundle.version} (written, not released)" in captured.out


def test_a_second_run_of_a_busy_partition_is_refused(tmp_path, instance):
    resources = local_resources(tmp_path)
    busy = instance.create_run_for_job(
        dg.define_asset_job("busy").resolve(asset_graph=dg.Definitions(assets=[]).resolve_asset_graph()),
        tags={"dagster/partition": PARTITION},
        status=dg.DagsterRunStatus.STARTED,
    )
    with pytest.raises(PartitionBusyError, match=f"run {busy.run_id} of partition {PARTITION} is STARTED"):
        materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)


def test_a_failed_step_ends_with_its_own_cause(tmp_path, instance, capsys):
    resources = local_resources(tmp_path)
    seed(resources)
    ops = {"training_set": FAST_SELECTION["ops"]["training_set"], "trained_model": {"config": {"use_gpu": True}}}
    outcome = materialize_partition(PARTITION, resources, instance, run_config={"ops": ops})
    assert report(outcome) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("run failed: trained_model: use_gpu=True needs a CUDA build of implicit")


def test_a_deterministic_failure_inside_the_training_process_is_not_retried(tmp_path, instance, capsys):
    resources = local_resources(tmp_path)
    seed(resources)
    # EASE is the only family and may use no memory: the worker's search cannot run, however often it is retried.
    search = {**FAST_SELECTION["ops"]["trained_model"]["config"], "families": ["ease"], "ease_memory_fraction": 1e-9}
    ops = {"training_set": FAST_SELECTION["ops"]["training_set"], "trained_model": {"config": search}}
    outcome = materialize_partition(PARTITION, resources, instance, run_config={"ops": ops})
    assert report(outcome) == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("run failed: trained_model: training refused: ValueError: no family completed a trial")
    run_ids = [run.run_id for run in instance.get_runs()]

    def steps(event_type: dg.DagsterEventType) -> list[str | None]:
        return [entry.step_key for run_id in run_ids for entry in instance.all_logs(run_id, of_type=event_type)]

    assert steps(dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    assert steps(dg.DagsterEventType.STEP_FAILURE) == ["trained_model"]


def test_an_unreadable_champion_makes_the_comparison_impossible_not_the_run(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    first = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert first.success and first.bundle
    merge_release(resources, first.bundle.version)
    model = tmp_path / "model_store" / "models" / SETTINGS.model_name / first.bundle.version / "model.npz"
    model.write_bytes(b"corrupted")

    # Forced: nothing the retrain depends on changed, so it would be skipped otherwise.
    second = materialize_partition(PARTITION, resources, instance, run_config=FORCED_SELECTION)
    assert second.success, second.failures
    comparison = latest_metadata(instance, "model_evaluation")["champion_comparison"]
    assert comparison.startswith("impossible: the champion cannot be read (BundleIntegrityError:")
    assert "model.npz" in comparison
    assert second.evaluation and second.evaluation.champion is None
    # Retraining is not blocked: the new version is proposed, ready to replace the broken champion.
    assert second.bundle and latest_metadata(instance, "model_release")["state"] == "proposed"


def test_a_champion_sharing_no_items_is_scored_as_no_overlap(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    first = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert first.success and first.bundle
    merge_release(resources, first.bundle.version)
    renamed = generate_events(SMALL_SPEC)
    renamed = renamed.set_column(1, "item_id", pc.binary_join_element_wise("new-", renamed["item_id"], ""))
    resources["warehouse"].replace_days(renamed)

    outcome = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert outcome.success, outcome.failures
    assert outcome.evaluation and outcome.evaluation.champion
    assert outcome.evaluation.champion_shared_items == 0 and outcome.evaluation.champion.metrics["ndcg@10"] == 0.0
    assert "shares no items with the new data" in latest_metadata(instance, "model_evaluation")["champion_comparison"]


def test_a_full_model_store_is_a_storage_error(tmp_path):
    store_dir = tmp_path / "tiny"
    store_dir.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(store_dir)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("needs permission to mount a small tmpfs")
    try:
        store = LocalModelStore(root=str(store_dir))
        with pytest.raises(ModelStoreError, match=r"cannot write models/m/v1/big\.bin: No space left on device"):
            store.publish_bundle("m", "v1", {"big.bin": os.urandom(256 * 1024)}, {"model_name": "m"})
        assert store.list_versions("m") == [] and not any(p.name.startswith(".tmp-") for p in store_dir.rglob("*"))
    finally:
        subprocess.run(["umount", str(store_dir)], check=True)
