"""The retrain-skip rule: a retrain is skipped only when nothing it depends on changed and the last one released."""

from recsys_assets.retrain_plan import NO_VERSION, LastRetrain, skip_reason

CURRENT = {"training_set": "a" * 64, "item_features": "b" * 64, "settings_hash": "c" * 16}
CODE = "0123456789abcdef"


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
