"""The champion is scored through the bundle's scoring contract: items mapped by id, unknown users folded in."""

import numpy as np
import pyarrow as pa
import pytest
import scipy.sparse as sp

from recsys_assets.domain import champion as scoring
from recsys_assets.domain.families.registry import restore_model
from recsys_assets.domain.serving import Bundle

# Current catalogue: a b c d e f -> indices 0..5. "d" is new (the champion never saw it).
CURRENT = ["a", "b", "c", "d", "e", "f"]
# The champion's catalogue, in its own order: "x" has left the current catalogue.
# With one factor, a folded-in user's factor has the sign of the factors of what it saw, so:
# - user 0 saw "a" (factor +0.5): it ranks items by factor, descending:  x 3 > c 2 > b 1 > f -1 > e -2
# - user 1 saw "f" (factor -1):   it ranks items by factor, ascending:   e -2 < a 0.5 < b 1 < c 2 < x 3
CHAMPION_IDS = ["f", "e", "x", "c", "b", "a"]
CHAMPION_FACTORS = np.array([[-1.0], [-2.0], [3.0], [2.0], [1.0], [0.5]], dtype=np.float32)
A, B, C, D, E, F = range(6)


def matrix(pairs: list[tuple[int, int]]) -> sp.csr_matrix:
    rows, cols = zip(*pairs, strict=True) if pairs else ((), ())
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(2, len(CURRENT)))


TRAIN = matrix([(0, A), (1, F)])
USERS = pa.array(["u0", "u1"])
ITEMS = pa.array(CURRENT)
CHAMPION = Bundle(
    uri="memory://champion-v1",
    version="champion-v1",
    # "old" is the only user the champion was trained on: u0 and u1 are folded in from their history.
    model=restore_model(
        "als",
        {"factors": 1, "bm25_k1": 0.0, "num_threads": 1},
        {"user_factors": np.ones((1, 1), np.float32), "item_factors": CHAMPION_FACTORS},
    ),
    user_ids=pa.array(["old"]),
    item_ids=pa.array(CHAMPION_IDS),
)


def champion_recommendations(users: np.ndarray, k: int) -> np.ndarray:
    return scoring.champion_recommendations(CHAMPION, TRAIN, USERS, ITEMS, users, k)


def score_champion(holdout: list[tuple[int, int]], k: int):
    return scoring.score_champion(CHAMPION, TRAIN, matrix(holdout), USERS, ITEMS, k)[0]


def test_recommendations_are_current_catalogue_indices():
    recs = champion_recommendations(np.array([1]), k=3)
    # champion order e, a, b (its indices 1, 5, 4) are current indices 4, 0, 1
    assert recs.tolist() == [[E, A, B]]


def test_folding_in_uses_the_users_current_rows():
    recs = champion_recommendations(np.array([1, 0]), k=2)
    # the same factors, opposite histories, opposite orders; user 0's top champion item "x" is gone
    assert recs[0].tolist() == [E, A]
    assert C in recs[1].tolist() and A not in recs[1].tolist()


def test_never_an_item_outside_the_current_catalogue():
    recs = champion_recommendations(np.array([0, 1]), k=4)
    assert recs.shape == (2, 4)
    assert ((recs >= -1) & (recs < len(CURRENT))).all()
    assert D not in recs  # "d" has no champion factors, so the champion cannot recommend it


def test_a_stale_champion_item_does_not_take_a_slot():
    recs = champion_recommendations(np.array([0]), k=3)
    # user 0's champion ranking is x, c, b, f, e; "x" is not in the current catalogue
    assert recs.tolist() == [[C, B, F]]


def test_pads_with_minus_one_after_the_shared_unseen_items():
    recs = champion_recommendations(np.array([1]), k=6)
    # user 1 saw f; the champion knows e, a, b, c of the current catalogue (d is new, x is gone)
    assert recs.tolist() == [[E, A, B, C, -1, -1]]


def test_score_champion_on_the_current_holdout():
    score = score_champion([(1, E)], k=3)
    assert score.version == "champion-v1"
    # only user 1 has a held-out item, "e", recommended first: [e, a, b]
    assert score.metrics["users_evaluated"] == 1
    assert score.metrics["precision@3"] == pytest.approx(1 / 3)
    assert score.metrics["recall@3"] == 1.0
    assert score.metrics["ndcg@3"] == 1.0 and score.metrics["map@3"] == 1.0
    assert score.metrics["coverage"] == pytest.approx(3 / 6)  # e, a, b of 6 current items


def test_a_champion_sharing_no_items_scores_zero_and_says_so():
    stranger = Bundle(
        uri="memory://old-catalogue",
        version="old-catalogue",
        model=CHAMPION.model,
        user_ids=pa.array(["old"]),
        item_ids=pa.array(["p", "q", "r", "s", "t", "u"]),
    )
    assert scoring.shared_items(stranger.item_ids, ITEMS) == 0
    score, _ = scoring.score_champion(stranger, TRAIN, matrix([(0, B), (1, E)]), USERS, ITEMS, k=3)
    assert score.metrics["ndcg@3"] == 0.0 and score.metrics["coverage"] == 0.0
    assert scoring.shared_items(CHAMPION.item_ids, ITEMS) == 5


def test_postings_closed_at_the_cut_are_excluded_from_the_champions_lists_too():
    closed = np.zeros(len(CURRENT), dtype=bool)
    closed[C] = True
    recs = scoring.champion_recommendations(CHAMPION, TRAIN, USERS, ITEMS, np.array([0]), 3, excluded=closed)
    # user 0's champion ranking is x, c, b, f, e: "x" is gone and "c" closed at the current cut
    assert recs.tolist() == [[B, F, E]]
    assert CHAMPION.model.excluded is None  # the champion's own mask is left as it was
    score, _ = scoring.score_champion(CHAMPION, TRAIN, matrix([(0, C)]), USERS, ITEMS, 3, excluded=closed)
    assert score.metrics["recall@3"] == 0.0
