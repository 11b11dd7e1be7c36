"""The retrain-skip rule: a retrain is skipped only when nothing it depends on changed and the last one released;
and the recipes that let `items` judge it before anything is rebuilt."""

import dagster as dg

from recsys_assets.domain.params import ItemFeatureParams, SplitParams
from recsys_assets.retrain_plan import (
    NO_VERSION,
    LastRetrain,
    item_features_recipe,
    skip_reason,
    training_set_recipe,
    window_keys_ending,
)
from recsys_assets.settings import SETTINGS

CURRENT = {"training_set": "a" * 64, "item_features": "b" * 64, "settings_hash": "c" * 16}
CODE = "0123456789abcdef"
SPLIT = SplitParams()


def last(**changes) -> LastRetrain:
    return LastRetrain(
        **({"run_id": "run12345-xyz", "inputs": dict(CURRENT), "code_version": CODE, "released": True} | changes)
    )


def test_an_unchanged_retrain_whose_last_run_released_is_skipped_with_the_reason():
    assert skip_reason(CURRENT, last(), CODE) == (
        "training set aaaaaaaaaaaa, item features bbbbbbbbbbbb, code 0123456789ab and search settings are "
        "unchanged since run run12345, which released its model; materialize with force: true to retrain anyway"
    )


def test_any_change_runs_the_retrain():
    assert skip_reason(CURRENT, None, CODE) is None  # never trained
    assert skip_reason(CURRENT, last(released=False), CODE) is None  # the last retrain did not reach its release
    assert skip_reason(CURRENT, last(code_version="fedcba"), CODE) is None  # new code
    assert skip_reason(CURRENT, last(), None) is None  # no code version to compare
    for name in CURRENT:
        assert skip_reason(CURRENT, last(inputs=CURRENT | {name: "other"}), CODE) is None, name
    # An older materialization that recorded fewer inputs is not the same retrain.
    assert skip_reason(CURRENT, last(inputs={"training_set": "a" * 64}), CODE) is None


def test_a_partition_without_a_training_set_version_always_retrains():
    unversioned = CURRENT | {"training_set": NO_VERSION}
    assert skip_reason(unversioned, last(inputs=unversioned), CODE) is None


def test_a_recipe_changes_with_any_extract_of_the_window_the_catalogue_the_settings_or_the_code():
    window = window_keys_ending("2026-03-10")
    assert (len(window), window[0], window[-1]) == (SETTINGS.training_window_days, "2026-02-11", "2026-03-10")
    keys = window[-5:]  # a short window: each recorded event is a write
    with dg.DagsterInstance.ephemeral() as instance:
        for key in keys:
            instance.report_runless_asset_event(dg.AssetMaterialization("interactions", partition=key))

        def made_of(items: str = "i" * 64, params: SplitParams = SPLIT, code: str = "c1") -> str:
            return training_set_recipe(instance, keys, items, params, code)

        recorded = made_of()
        assert made_of() == recorded  # nothing new: the same recipe
        assert made_of(items="j" * 64) != recorded
        assert made_of(params=SplitParams(cut_days=3)) != recorded
        assert made_of(code="c2") != recorded
        # A day outside the window changes nothing ...
        instance.report_runless_asset_event(dg.AssetMaterialization("interactions", partition="2026-03-11"))
        assert made_of() == recorded
        # ... a window day extracted again (a late row) is a new materialization of that day: another recipe.
        instance.report_runless_asset_event(dg.AssetMaterialization("interactions", partition=keys[2]))
        assert made_of() != recorded


def test_item_features_recipe_follows_the_catalogue_the_settings_and_the_code():
    recorded = item_features_recipe("i" * 64, ItemFeatureParams(), "c1")
    assert item_features_recipe("i" * 64, ItemFeatureParams(), "c1") == recorded
    assert item_features_recipe("j" * 64, ItemFeatureParams(), "c1") != recorded
    assert item_features_recipe("i" * 64, ItemFeatureParams(min_df=2), "c1") != recorded
    assert item_features_recipe("i" * 64, ItemFeatureParams(), "c2") != recorded
