"""The champion gate (`not_worse_than_champion`), judged on evaluations built by hand."""

import dagster as dg

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


def test_a_challenger_within_the_tolerance_passes_and_one_below_the_floor_is_blocked():
    within = NOT_WORSE_THAN_CHAMPION(evaluation(0.196, {}, champion=0.2, shared_items=30), 0.02)
    assert within.passed and within.severity == dg.AssetCheckSeverity.ERROR
    assert within.description == "challenger ndcg@10 0.1960 >= floor 0.1960 (champion v-champion 0.2000 - 2%)"
    assert {name: value.value for name, value in within.metadata.items()} == {
        "challenger": 0.196,
        "champion": 0.2,
        "floor": 0.196,
        "margin": 0.02,
        "champion_version": "v-champion",
    }
    below = NOT_WORSE_THAN_CHAMPION(evaluation(0.19, {}, champion=0.2, shared_items=30), 0.02)
    assert not below.passed and below.description.startswith("challenger ndcg@10 0.1900 < floor 0.1960")


def test_a_champion_that_shares_no_items_is_compared_as_no_overlap():
    check = NOT_WORSE_THAN_CHAMPION(evaluation(0.1, {}, champion=0.0, shared_items=0), 0.02)
    assert check.passed and check.description.endswith("- 2%; it shares no items with the new data)")
