"""Cold start through the whole graph: the catalogue, its features, a content model, cold-item metrics, serving."""

import json

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.cli import main
from recsys_assets.cli.pipeline import materialize_partition
from recsys_assets.domain.items import generate_catalogue
from recsys_assets.domain.synthetic import SMALL_SPEC
from recsys_assets.serving import load_bundle
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.data import MOVIELENS_SPEC, write_movielens_u_data
from recsys_assets_tests.support.environment import FAST_SELECTION, local_env, local_resources, seed

PARTITION = SMALL_SPEC.end_date.isoformat()


def test_graph_with_items_scores_cold_items_and_serves_new_postings(tmp_path):
    resources = local_resources(tmp_path)
    seed(resources)
    # Content only, and a gate that lets it through: this test is about cold items, not about which family wins.
    config = {"ops": {**FAST_SELECTION["ops"]}}
    config["ops"]["trained_model"] = {"config": {"families": ["content"], "trials_per_family": 2, "num_threads": 1}}
    config["ops"]["model_evaluation"] = {"config": {"baseline_tolerance": 1.0}}
    with dg.instance_for_test() as instance:
        outcome = materialize_partition(PARTITION, resources, instance, run_config=config)
        assert outcome.success, outcome.failures
        features = instance.get_latest_materialization_event(dg.AssetKey("item_features"))
        assert features is not None
        assert features.asset_materialization.metadata["postings"].value > 0  # type: ignore[union-attr]
    evaluation = outcome.evaluation
    assert evaluation is not None and outcome.report is not None and outcome.report.model.family == "content"
    cut = evaluation.protocols["global_cut"]
    assert cut.cold_holdout is not None and cut.cold_holdout.pairs > 0
    assert cut.cold_items["model"]["recall@10"] > 0.05
    # A collaborative baseline cannot rank a posting it never saw: zero by construction, shown anyway.
    assert cut.cold_items["item_knn"]["recall@10"] == 0.0 and cut.cold_items["popularity"]["recall@10"] == 0.0
    assert 0 <= cut.new_item_share["model"] <= 1

    # The bundle carries the feature transformer: a posting that appears after it was built is served.
    assert outcome.bundle is not None
    bundle = load_bundle(outcome.bundle.uri)
    assert bundle.featurizer is not None
    later = generate_catalogue(SMALL_SPEC).slice(0, 1)
    later = later.set_column(0, "item_id", pc.binary_join_element_wise(later["item_id"], "-new", ""))
    later = later.set_column(6, "closed_date", pa.nulls(1, pa.date32()))  # still open: a closed one is refused
    assert bundle.add_postings(later) == 1
    user = bundle.user_ids[0].as_py()
    lists = [bundle.recommend(user, [], n=len(bundle.item_ids))]
    assert "job000-new" in lists[0]
    card = (
        tmp_path / "model_store/models" / SETTINGS.model_name / outcome.bundle.version / "model_card.md"
    ).read_text()
    assert "Cold items (global_cut)" in card and "| item_knn | 0.0000 |" in card


def test_movielens_items_import_then_run_reports_cold_items(embedded_env, capsys):
    # u.data and u.item made from the synthetic job board (public data cannot be downloaded here):
    # a posting's segment becomes its genre flag, its text the title.
    write_movielens_u_data(embedded_env / "u.data", MOVIELENS_SPEC)
    catalogue = generate_catalogue(MOVIELENS_SPEC)
    segment = np.asarray([int(c.split("-")[1]) for c in catalogue["category"].to_pylist()])
    lines = [
        f"{i + 1}|{title}|01-Jan-1995||http://example.invalid/{i}|"
        + "|".join("1" if g == s + 1 else "0" for g in range(19))
        for i, (title, s) in enumerate(zip(catalogue["description"].to_pylist(), segment, strict=True))
    ]
    (embedded_env / "u.item").write_bytes("\n".join(lines).encode("latin-1"))

    assert main(["import-events", str(embedded_env / "u.data"), "--format", "movielens", "--min-rating", "3"]) == 0
    assert main(["import-items", str(embedded_env / "u.item"), "--format", "movielens"]) == 0
    assert f"imported {MOVIELENS_SPEC.n_items:,} of {MOVIELENS_SPEC.n_items:,} items" in capsys.readouterr().out
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert "cold items (global_cut):" in out
    cold_pairs = int(out.split("cold items (global_cut): ", 1)[1].split()[0].replace(",", ""))
    assert cold_pairs > 0
    version = out.strip().splitlines()[-1].split()[2].rstrip(":")
    manifest = json.loads(
        (embedded_env / "model_store/models" / SETTINGS.model_name / version / "manifest.json").read_text()
    )
    cold = manifest["protocols"]["global_cut"]["cold_items"]
    assert cold["item_knn"]["recall@10"] == 0.0
    if manifest["model"]["family"] in ("content", "hybrid"):
        assert cold["model"]["recall@10"] > 0
    assert local_env(embedded_env)  # the environment the CLI ran in
