"""The version state rules and the views folded from the events."""

import pytest

from recsys_assets.domain.registry import (
    TransitionError,
    champion_of,
    check_transition,
    fold,
    index,
    rollback_target,
)
from recsys_assets.domain.reports import versions_table
from recsys_assets_tests.support.records import event


def test_allowed_and_refused_transitions():
    check_transition("v1", None, "proposed")
    check_transition("v1", "proposed", "released")
    check_transition("v1", "superseded", "proposed")  # promote / rollback proposes it again
    for current, new in [
        (None, "released"),
        ("rejected", "proposed"),
        ("released", "proposed"),
        ("proposed", "superseded"),
    ]:
        with pytest.raises(TransitionError, match=f"v1 is {current or 'unrecorded'}: it cannot become {new}"):
            check_transition("v1", current, new)  # type: ignore[arg-type]


def test_fold_orders_by_sequence_and_keeps_the_last_pull_request():
    status = fold("v1", [event("v1", 2, "released", "t2"), event("v1", 1, "proposed", "t1", "https://pr/1")])
    assert status is not None and status.state == "released" and status.since == "t2"
    assert status.pull_request == "https://pr/1" and status.proposals == 1
    assert fold("v1", []) is None


def test_champion_rollback_target_index_and_table():
    statuses = {
        "v1": fold(
            "v1",
            [event("v1", 1, "proposed", "t1"), event("v1", 2, "released", "t2"), event("v1", 3, "superseded", "t5")],
        ),
        "v2": fold("v2", [event("v2", 1, "proposed", "t3"), event("v2", 2, "released", "t5")]),
        "v3": fold("v3", [event("v3", 1, "proposed", "t6"), event("v3", 2, "rejected", "t7")]),
    }
    statuses = {k: v for k, v in statuses.items() if v}
    assert champion_of(statuses).version == "v2"  # type: ignore[union-attr]
    assert rollback_target(statuses).version == "v1"  # type: ignore[union-attr]
    assert index(statuses) == {
        "champion": "v2",
        "versions": {
            "v1": {"state": "superseded", "since": "t5", "pull_request": None, "events": 3},
            "v2": {"state": "released", "since": "t5", "pull_request": None, "events": 2},
            "v3": {"state": "rejected", "since": "t7", "pull_request": None, "events": 2},
        },
    }
    table = versions_table(statuses, limit=2).splitlines()
    assert table[2].startswith("| v3 | rejected |") and table[3].startswith("| v2 | released |") and len(table) == 4
