"""The release gate against the baselines (`beats_baselines`), judged on evaluations built by hand."""

import dagster as dg
import numpy as np

from recsys_assets.domain.bootstrap import paired_lift
from recsys_assets.evaluation.checks import BEATS_BASELINES
from recsys_assets_tests.support.records import evaluation

USERS = 2000
RNG = np.random.default_rng(7)
# Per-user NDCG of the item-kNN baseline on the holdout, and of popularity (weaker on most users).
ITEM_KNN = RNG.random(USERS) * 0.5
POPULARITY = ITEM_KNN * 0.6


def gated(model: np.ndarray, same_as: str | None = None, min_lift: float | None = None, tolerance: float = 0.02):
    """The gate on an evaluation whose lifts are the paired bootstrap of `model` against both baselines."""
    baselines = {"popularity": POPULARITY, "item_knn": ITEM_KNN}
    lifts = {name: paired_lift(model, scores) for name, scores in baselines.items()}
    result = evaluation(
        float(model.mean()),
        {name: float(scores.mean()) for name, scores in baselines.items()},
        lifts=lifts,
        same_as=same_as,
    )
    return BEATS_BASELINES(result, min_lift, tolerance)


def test_a_model_that_is_the_best_baseline_configuration_passes():
    check = gated(ITEM_KNN.copy(), same_as="item_knn")
    assert check.check_name == "beats_baselines" and check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "item_knn 0.2" in (check.description or "") and "the model's own configuration: not gated" in (
        check.description or ""
    )
    assert check.metadata["users"].value == USERS and check.metadata["same_as"].value == "item_knn"


def test_a_model_within_the_noise_of_a_baseline_passes():
    noise = RNG.normal(0, 0.05, USERS)
    check = gated(np.clip(ITEM_KNN + noise, 0, 1))
    assert check.passed, check.description


def test_a_model_significantly_worse_than_a_baseline_is_blocked_with_its_interval():
    check = gated(ITEM_KNN * 0.9)
    assert not check.passed
    description = check.description or ""
    assert description.startswith(f"global_cut, {USERS:,} users: model ndcg@10 ")
    assert "item_knn 0.2" in description and ": -10.0% [-10.0%, -10.0%]" in description
    assert description.endswith("significantly worse than item_knn by more than the 2% tolerance")
    numbers = {name: value.value for name, value in check.metadata.items()}
    assert numbers["lift_over_item_knn"] == -0.1 and numbers["lift_high_item_knn"] == -0.1
    assert numbers["lift_over_popularity"] == 0.5


def test_a_loss_inside_the_tolerance_passes():
    assert gated(ITEM_KNN * 0.99).passed
    assert not gated(ITEM_KNN * 0.99, tolerance=0.0).passed


def test_min_relative_lift_asks_for_a_significantly_better_model():
    assert not gated(ITEM_KNN * 1.02, min_lift=0.05).passed
    better = gated(ITEM_KNN * 1.10, min_lift=0.05)
    assert better.passed and "significantly more than 5% better than each" in (better.description or "")


def test_without_per_user_scores_the_gate_compares_the_means():
    assert BEATS_BASELINES(evaluation(0.3, {"popularity": 0.1, "item_knn": 0.25}), 0.05, 0.02).passed
    blocked = BEATS_BASELINES(evaluation(0.2, {"item_knn": 0.25}), None, 0.02)
    assert not blocked.passed and "-20.0% [-20.0%, -20.0%]" in (blocked.description or "")
