"""The champion gate (`not_worse_than_champion`), judged on evaluations built by hand."""

import dagster as dg
import numpy as np

from recsys_assets.domain.bootstrap import paired_lift
from recsys_assets.release.checks import NOT_WORSE_THAN_CHAMPION
from recsys_assets_tests.support.records import evaluation


def test_the_first_model_is_released_when_no_champion_is_promoted():
    check = NOT_WORSE_THAN_CHAMPION(evaluation(0.2, {"popularity": 0.1}), 0.02)
    assert check.check_name == "not_worse_than_champion" and check.passed
    assert check.description == "no champion promoted yet: the first model is released"
    assert {name: value.value for name, value in check.metadata.items()} == {"challenger": 0.2, "margin": 0.02}


def test_an_unreadable_champion_does_not_block_and_says_why():
    check = NOT_WORSE_THAN_CHAMPION(evaluation(0.2, {}, unavailable="the champion cannot be read (x)"), 0.02)
    assert (
        check.passed and check.description == "comparison with the champion impossible: the champion cannot be read (x)"
    )


def test_a_challenger_within_the_noise_passes_and_one_significantly_worse_is_blocked():
    champion = np.random.default_rng(2).random(1000) * 0.4
    noisy = np.clip(champion + np.random.default_rng(3).normal(0, 0.05, 1000), 0, 1)
    within = NOT_WORSE_THAN_CHAMPION(
        evaluation(float(noisy.mean()), {}, champion=0.2, shared_items=30, champion_lift=paired_lift(noisy, champion)),
        0.02,
    )
    assert within.passed and within.severity == dg.AssetCheckSeverity.ERROR
    assert "(95% interval, 1,000 users), not significantly worse than the champion" in within.description
    worse = champion * 0.9
    below = NOT_WORSE_THAN_CHAMPION(
        evaluation(float(worse.mean()), {}, champion=0.2, shared_items=30, champion_lift=paired_lift(worse, champion)),
        0.02,
    )
    assert not below.passed
    assert below.description.startswith("challenger ndcg@10 ")
    assert "lift -10.0% [-10.0%, -10.0%] (95% interval, 1,000 users), significantly worse" in below.description
    numbers = {name: value.value for name, value in below.metadata.items()}
    assert numbers["lift_high"] == -0.1 and numbers["users"] == 1000 and numbers["champion_version"] == "v-champion"


def test_without_per_user_scores_the_means_are_compared():
    assert NOT_WORSE_THAN_CHAMPION(evaluation(0.197, {}, champion=0.2, shared_items=30), 0.02).passed
    assert not NOT_WORSE_THAN_CHAMPION(evaluation(0.19, {}, champion=0.2, shared_items=30), 0.02).passed


def test_a_champion_that_shares_no_items_is_compared_as_no_overlap():
    check = NOT_WORSE_THAN_CHAMPION(evaluation(0.1, {}, champion=0.0, shared_items=0), 0.02)
    assert check.passed and check.description.endswith("by more than 2%; it shares no items with the new data")
