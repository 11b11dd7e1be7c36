"""Outcome metrics of served lists, worked by hand on a small example."""

import pyarrow as pa
import pytest

from recsys_assets.domain.events import EVENT_TYPE_WEIGHTS
from recsys_assets.domain.outcomes import outcome_table, outcomes


def test_hit_rate_precision_recall_ndcg_and_interaction_share_per_version():
    lists = pa.table(
        {
            "user_id": ["a", "a", "b", "b", "c", "e"],
            "rank": [1, 2, 1, 2, 1, 1],
            "item_id": ["x", "y", "x", "z", "q", "w"],
            "model_version": ["v1"] * 5 + ["v2"],
        }
    )
    # a applies to y (gain 5) and views w; b views w; d (not served) views x; e (v2) views w.
    events = pa.table(
        {
            "user_id": ["a", "a", "b", "d", "e"],
            "item_id": ["y", "w", "w", "x", "w"],
            "event_type": ["apply", "view", "view", "view", "view"],
            "weight": [1.0, 1.0, 1.0, 1.0, 1.0],
        }
    )
    v1, v2 = outcomes(lists, events, 2, EVENT_TYPE_WEIGHTS)
    assert (v1.version, v1.users, v1.users_interacting) == ("v1", 3, 2)
    assert v1.hit_rate == pytest.approx(1 / 3)
    assert v1.precision == pytest.approx((1 / 2) / 3)
    assert v1.recall == pytest.approx((1 / 2 + 0) / 2)  # over users who interacted
    ideal_a = 5 + 1 / 1.5849625
    assert v1.ndcg == pytest.approx(((5 / 1.5849625) / ideal_a + 0) / 2)
    assert v1.interaction_share == pytest.approx(5 / 9)  # of all users' gain: 5 + 1 + 1 + 1 + 1
    assert (v2.hit_rate, v2.recall, v2.ndcg) == (1.0, 1.0, 1.0)


def test_no_interaction_is_zero_not_an_error_and_the_table_shows_notes():
    lists = pa.table({"user_id": ["a"], "rank": [1], "item_id": ["x"], "model_version": ["v1"]})
    empty = pa.table(
        {
            "user_id": pa.array([], pa.string()),
            "item_id": pa.array([], pa.string()),
            "event_type": pa.array([], pa.string()),
            "weight": pa.array([], pa.float64()),
        }
    )
    [outcome] = outcomes(lists, empty, 1, EVENT_TYPE_WEIGHTS)
    assert (outcome.users, outcome.hit_rate, outcome.interaction_share) == (1, 0.0, 0.0)
    table = outcome_table([{"day": "2026-03-10", "note": "no lists served on D-1 (2026-03-09)"}])
    assert "| 2026-03-10 | no lists served on D-1 (2026-03-09) |" in table
