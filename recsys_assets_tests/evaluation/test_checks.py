"""The release gate against the baselines (`beats_baselines`), judged on evaluations built by hand."""

import dagster as dg

from recsys_assets.evaluation.checks import BEATS_BASELINES
from recsys_assets_tests.support.records import evaluation


def test_the_model_passes_when_it_beats_every_baseline_by_the_margin():
    check = BEATS_BASELINES(evaluation(0.3, {"popularity": 0.1, "item_knn": 0.25}), 0.05)
    assert check.check_name == "beats_baselines" and check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert check.description == (
        "global_cut: model ndcg@10 0.3000 beats popularity 0.1000 (needs > 0.1050), "
        "item_knn 0.2500 (needs > 0.2625) by 5%"
    )
    assert {name: value.value for name, value in check.metadata.items()} == {
        "challenger": 0.3,
        "margin": 0.05,
        "popularity": 0.1,
        "item_knn": 0.25,
        "required_over_popularity": 0.105,
        "required_over_item_knn": 0.2625,
        "protocol": "global_cut",
    }


def test_the_model_is_blocked_when_one_baseline_is_within_the_margin():
    check = BEATS_BASELINES(evaluation(0.26, {"popularity": 0.1, "item_knn": 0.25}), 0.05)
    assert not check.passed and "does not beat" in (check.description or "")


def test_exactly_the_required_score_is_not_enough_and_a_negative_margin_lets_a_weaker_model_through():
    assert not BEATS_BASELINES(evaluation(0.25, {"item_knn": 0.25}), 0.0).passed
    assert BEATS_BASELINES(evaluation(0.2, {"item_knn": 0.25}), -0.5).passed
