"""The whole graph on the embedded default: real values at every step, and the gates that stop it."""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow as pa
import pytest

from recsys_assets.cli.pipeline import materialize_partition, window
from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.layout import ArtifactLayout
from recsys_assets.domain.synthetic import SMALL_SPEC
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.data import add_late_row
from recsys_assets_tests.support.environment import (
    FAST_SELECTION,
    FORCED_SELECTION,
    local_resources,
    merge_release,
    seed,
)

PARTITION = SMALL_SPEC.end_date.isoformat()


def latest_metadata(instance: dg.DagsterInstance, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None, f"{asset} was never materialized"
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def model_dir(root: Path) -> Path:
    return root / "model_store" / "models" / SETTINGS.model_name


def test_full_graph_materializes_with_real_values(tmp_path, instance):
    resources = local_resources(tmp_path)
    rows_per_day = seed(resources)
    outcome = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert outcome.success, outcome.failures

    # The whole window in one run, each day materialized with its own numbers.
    days = instance.get_materialized_partitions(dg.AssetKey("interactions"))
    assert len(days) == SETTINGS.training_window_days
    extract = latest_metadata(instance, "interactions")
    assert extract["dagster/row_count"] == rows_per_day[PARTITION] and extract["rows_rejected"] == 0

    training = latest_metadata(instance, "training_set")
    assert training["users"] > 0.9 * SMALL_SPEC.n_users and training["holdout_users"] > 0.95 * training["users"]
    assert training["window"].startswith((SMALL_SPEC.end_date - timedelta(days=27)).isoformat())

    trained = latest_metadata(instance, "trained_model")  # reported from the training subprocess through Pipes
    report = outcome.report
    assert trained["search_trials"] == len(report.search) >= 4 and trained["family"] == report.model.family
    assert {trial.family for trial in report.search} == {"popularity", "item_knn", "ease", "als"}
    assert trained["best_validation_ndcg"] == max(t.validation_ndcg for t in report.search if t.state == "complete")
    assert "| 1 | popularity |" in trained["trials"]
    assert trained["launcher"] == "SubprocessTrainingLauncher" and trained["image"] == "local"

    evaluation = outcome.evaluation
    assert evaluation.protocol == "global_cut" and set(evaluation.protocols) == {"per_user", "global_cut"}
    assert evaluation.protocols["per_user"].model["users_evaluated"] == training["holdout_users"]
    # On the gating protocol the selection is well above popularity and not below item-kNN beyond the
    # gate's tolerance (on this small set EASE and item-kNN tie within noise on validation).
    gated = evaluation.protocols["global_cut"]
    assert gated.model["ndcg@10"] > 1.3 * gated.baselines["popularity"]["ndcg@10"]
    assert gated.model["ndcg@10"] >= 0.98 * gated.baselines["item_knn"]["ndcg@10"]
    assert (
        evaluation.protocols["per_user"].model["ndcg@10"]
        > evaluation.protocols["per_user"].baselines["popularity"]["ndcg@10"]
    )
    assert evaluation.champion is None

    version = outcome.bundle.version
    bundle = model_dir(tmp_path) / version
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model_name"] == SETTINGS.model_name and manifest["version"] == version
    assert manifest["image"] is None and manifest["data"]["window"]["days"] == 28
    assert manifest["data"]["content_hash"] == training["content_hash"]
    assert set(manifest["metrics"]) == {"model", "baselines", "lifts"} and manifest["protocol"] == "global_cut"
    # The lift over each baseline with its interval and users; the model is item-kNN's configuration here or not.
    assert set(manifest["metrics"]["lifts"]) == {"popularity", "item_knn"}
    assert manifest["metrics"]["lifts"]["popularity"]["users"] == evaluation.holdout.users
    assert manifest["model"] == report.model.model_dump(mode="json")
    assert set(manifest["protocols"]) == {"per_user", "global_cut"}
    assert set(manifest["metrics"]["model"]) == {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage"}
    assert set(manifest["metrics"]["baselines"]) == {"popularity", "item_knn"}
    assert manifest["metrics"]["model"]["ndcg@10"] == pytest.approx(evaluation.model["ndcg@10"])
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == digest
    assert pa.parquet.read_table(bundle / "item_ids.parquet").num_rows == training["items"]
    assert (bundle / "metrics.png").read_bytes().startswith(b"\x89PNG")
    # Drawn by the evaluation step (in the warm child, where the plotting library is loaded), shipped as is.
    drawn = [path.read_bytes() for path in tmp_path.glob("**/model_evaluation/**/metrics.png")]
    assert drawn == [(bundle / "metrics.png").read_bytes()]
    card = (bundle / "model_card.md").read_text()
    assert "![metrics](metrics.png)" in card and "### global_cut (gates the release)" in card
    assert "### per_user" in card and "## Candidates tried" in card
    assert set(manifest["files"]) >= {"model.npz", "evaluated/per_user.npz", "evaluated/global_cut.npz"}
    assert set(manifest["trained_on"]) == {"model.npz", "evaluated/per_user.npz", "evaluated/global_cut.npz"}
    assert f"{manifest['data']['full_pairs']:,} pairs, both holdouts included" in manifest["trained_on"]["model.npz"]
    assert manifest["data"]["full_pairs"] > manifest["data"]["train_pairs"]
    assert "`model.npz`: the whole window" in card and "`evaluated/global_cut.npz`: global_cut train split" in card
    assert_serving_reproduces_the_evaluation(tmp_path, str(bundle), evaluation)

    release = tmp_path / "model_store" / "releases" / SETTINGS.model_name / version
    pointer = json.loads((release / f"models/{SETTINGS.model_name}.json").read_text())
    assert pointer["version"] == version
    assert pointer["manifest_sha256"] == hashlib.sha256((bundle / "manifest.json").read_bytes()).hexdigest()
    body = (release / "PULL_REQUEST.md").read_text()
    assert "| ndcg@10 | — |" in body and "### global_cut (gates the release)" in body and "### per_user" in body
    # Proposed, not yet released: the champion moves only when the proposal is merged.
    assert not (model_dir(tmp_path) / "champion.json").exists()
    assert latest_metadata(instance, "model_release")["state"] == "proposed"
    merge_release(resources, version)
    assert json.loads((model_dir(tmp_path) / "champion.json").read_text())["version"] == version

    # A second run is a new version next to the first, whose files stay byte-for-byte intact (its
    # events/ folder is the version's state history, which grows),
    # and the first is now the champion the challenger is measured against.
    # Forced: the data and code are unchanged, so an unforced retrain would be skipped (tested below).
    before = {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()}
    second = materialize_partition(PARTITION, resources, instance, run_config=FORCED_SELECTION)
    assert second.success and second.bundle.version != version and second.skipped is None
    assert second.evaluation.champion.version == version
    assert second.evaluation.champion.metrics["ndcg@10"] == pytest.approx(evaluation.model["ndcg@10"], rel=0.05)
    assert {p.name: p.read_bytes() for p in bundle.iterdir() if p.is_file()} == before


def assert_serving_reproduces_the_evaluation(root: Path, bundle_uri: str, evaluation) -> None:
    """`load_bundle(uri, protocol).recommend` for every holdout user gives the lists, hence the metrics, the
    evaluation scored; `load_bundle(uri)` serves the refit on the whole window instead."""
    from recsys_assets.domain.families.base import rank_users
    from recsys_assets.domain.families.registry import load_model, new_model
    from recsys_assets.domain.layout import ArtifactLayout
    from recsys_assets.domain.metrics import ranking_metrics
    from recsys_assets.domain.splitting import TrainingSet
    from recsys_assets.serving import load_bundle

    served = load_bundle(bundle_uri, protocol=evaluation.protocol)
    # The run that built the bundle also built the training set and the model it was made from.
    layout = ArtifactLayout(str(root / "artifacts"), run=served.manifest.dagster.run_id)
    data = TrainingSet.load(layout.training_set(PARTITION))
    split = data.protocols[evaluation.protocol]
    offline_model = load_model(
        served.manifest.model.family,
        served.manifest.model.params,
        Path(layout.trained_model(PARTITION).model(evaluation.protocol)).read_bytes(),
    )
    users = np.flatnonzero(np.diff(split.holdout.indptr) > 0)
    offline = rank_users(offline_model, split.train, evaluation.k)(users)
    user_ids, item_ids = data.user_ids.to_pylist(), data.item_ids.to_pylist()
    column = {item: i for i, item in enumerate(item_ids)}
    recommendations = np.full((split.holdout.shape[0], evaluation.k), -1, dtype=np.int64)
    for row, user in enumerate(users):
        seen = [item_ids[i] for i in split.train[user].indices]
        ids = served.recommend(user_ids[user], seen, n=evaluation.k)
        assert ids == [item_ids[i] for i in offline[row] if i >= 0], f"user {user_ids[user]}"
        recommendations[user, : len(ids)] = [column[item] for item in ids]
    served_metrics = ranking_metrics(recommendations, split.holdout, split.holdout.shape[1])
    assert served_metrics == evaluation.model

    # The default is the served model: the same family and parameters refitted on the whole window.
    production = load_bundle(bundle_uri)
    refit = new_model(served.manifest.model.family, served.manifest.model.params).fit(data.full, data.full_ages())

    def same(a, b) -> bool:
        return a.keys() == b.keys() and all(np.array_equal(a[name], b[name]) for name in a)

    assert same(production.model.arrays(), refit.arrays())
    assert not same(production.model.arrays(), served.model.arrays())


def structureless_events(end: date) -> pa.Table:
    """Every user draws items from one global popularity curve: nothing to personalise."""
    rng = np.random.default_rng(5)
    n = 40_000
    popularity = 1.0 / np.arange(1, 201) ** 1.2
    items = rng.choice(200, n, p=popularity / popularity.sum())
    start = datetime.combine(end - timedelta(days=9), datetime.min.time(), tzinfo=UTC)
    return pa.table(
        {
            "user_id": [f"u{u}" for u in rng.integers(0, 1500, n)],
            "item_id": [f"j{i}" for i in items],
            "event_type": ["view"] * n,
            "weight": np.ones(n),
            "event_ts": [start + timedelta(seconds=int(s)) for s in rng.integers(0, 10 * 86400, n)],
        },
        schema=EVENTS_SCHEMA,
    )


def test_blocking_check_stops_the_bundle_when_popularity_wins(tmp_path, instance):
    resources = local_resources(tmp_path)
    resources["warehouse"].replace_days(structureless_events(SMALL_SPEC.end_date))
    strict = {"ops": {**FAST_SELECTION["ops"], "model_evaluation": {"config": {"min_relative_lift": 0.05}}}}
    outcome = materialize_partition(PARTITION, resources, instance, run_config=strict)

    assert not outcome.success and outcome.bundle is None
    assert any("beats_baselines" in reason and "popularity" in reason for reason in outcome.failures)
    assert not model_dir(tmp_path).exists(), "no bundle may be written when the gate fails"
    assert instance.get_latest_materialization_event(dg.AssetKey("model_release")) is None


def test_worse_challenger_is_blocked_and_champion_kept(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    champion = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert champion.success
    merge_release(resources, champion.bundle.version)
    # A weak challenger: only all-time popularity may be selected.
    weak = {
        "ops": {
            **FAST_SELECTION["ops"],
            "trained_model": {"config": {"families": ["popularity"], "trials_per_family": 1}},
            "model_evaluation": {"config": {"baseline_tolerance": 1.0}},
        }
    }
    challenger = materialize_partition(PARTITION, resources, instance, run_config=weak)

    assert not challenger.success
    print(challenger.failures)
    reason = next(r for r in challenger.failures if "not_worse_than_champion" in r)
    assert f"champion {champion.bundle.version}" in reason
    pointer = json.loads((model_dir(tmp_path) / "champion.json").read_text())
    assert pointer["version"] == champion.bundle.version
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("model_bundle"), "not_worse_than_champion")]
    )
    evaluation = next(iter(check.values())).event.dagster_event.event_specific_data
    assert not evaluation.passed and "challenger ndcg@10" in evaluation.description


def test_training_set_extracts_missing_window_days_once_and_records_them(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    from recsys_assets.definitions import ASSETS

    def extracted_by_training_set() -> list[str]:
        result = dg.materialize(
            ASSETS,
            selection=["training_set"],
            resources=resources,
            instance=instance,
            partition_key=PARTITION,
            run_config={"ops": {"training_set": FAST_SELECTION["ops"]["training_set"]}},
        )
        (training,) = [
            m for m in result.asset_materializations_for_node("training_set") if m.asset_key.path == ["training_set"]
        ]
        return training.metadata["days_extracted_here"].value

    extracted = extracted_by_training_set()
    start, end = window(PARTITION)
    assert extracted[0] == start and extracted[-1] == end and len(extracted) == 28
    # The days land in the extract layout and count as `interactions` materializations in the UI.
    # Extracts are shared by every run of the day, so any run's layout addresses them.
    layout = ArtifactLayout(resources["artifacts"].root_uri, run="any")
    assert all(Path(layout.interactions(day).events).exists() for day in extracted)
    materialized = instance.get_materialized_partitions(dg.AssetKey("interactions"))
    assert set(extracted) <= materialized

    # A retrain reads the extracts as they are: nothing is extracted again.
    assert extracted_by_training_set() == []


def test_bad_rows_are_quarantined_and_block_downstream(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    day = SMALL_SPEC.end_date
    broken = pa.table(
        {
            "user_id": [None] * 200 + ["u1"],
            "item_id": ["j1"] * 201,
            "event_type": ["view"] * 201,
            "weight": [1.0] * 200 + [-3.0],
            "event_ts": [datetime.combine(day, datetime.min.time(), tzinfo=UTC)] * 201,
        },
        schema=EVENTS_SCHEMA,
    )
    resources["warehouse"].replace_days(broken)
    outcome = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)

    assert not outcome.success
    assert any(f"release blocked: no_null_ids: {PARTITION}: 200 of 201 rows" in r for r in outcome.failures)
    # one negative weight in 201 rows is under the 1% limit: quarantined, but not a failure
    assert not any("non_negative_weights" in r for r in outcome.failures)
    rejected = pa.parquet.read_table(tmp_path / "artifacts" / "interactions" / PARTITION / "rejected.parquet")
    assert rejected.num_rows == 201  # quarantined next to the extract, not lost
    assert rejected["weight"].to_pylist().count(-3.0) == 1
    assert instance.get_latest_materialization_event(dg.AssetKey("training_set")) is None


def test_unchanged_window_skips_the_retrain_and_a_late_row_retrains(tmp_path, instance):
    resources = local_resources(tmp_path)
    seed(resources)
    first = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert first.success and first.bundle is not None and first.skipped is None, first.failures
    hash_of = lambda: latest_metadata(instance, "training_set")["content_hash"]  # noqa: E731
    built = hash_of()

    # Same window data, code and settings: training, evaluation, bundle and release are skipped.
    again = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert again.success and again.bundle is None and again.evaluation is None, again.failures
    assert again.skipped is not None and "unchanged" in again.skipped and hash_of() == built
    assert first.extracted == window(PARTITION) and again.extracted is None  # nothing new to extract
    assert sorted(p.name for p in model_dir(tmp_path).iterdir() if p.is_dir()) == [first.bundle.version]
    (skipped_run,) = instance.get_runs(dg.RunsFilter(tags={"recsys/retrain": "skipped: unchanged"}))
    skipped_steps = {
        e.step_key for e in instance.all_logs(skipped_run.run_id) if e.dagster_event and e.dagster_event.is_step_skipped
    }
    assert {"model_evaluation", "model_bundle", "model_release"} <= skipped_steps

    # One late row in a day in the middle of the window makes it stale again.
    day = SMALL_SPEC.end_date - timedelta(days=4)
    add_late_row(resources["warehouse"], day, event_type="apply")
    changed = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
    assert changed.success and changed.skipped is None, changed.failures
    assert changed.extracted == (day.isoformat(), day.isoformat())  # only the changed day is extracted again
    assert hash_of() != built and changed.bundle is not None and changed.bundle.version != first.bundle.version
