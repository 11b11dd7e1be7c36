"""Ranking metrics agree with hand-computed cases, their textbook definitions and implicit's own evaluation."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.domain.families.base import rank_users
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.metrics import evaluate, headline_names, ranked_once, ranking_metrics
from recsys_assets.domain.reports import metrics_table


def reference(recs: list[list[int]], relevant: list[set[int]], k: int) -> dict[str, float]:
    """Per-user loop over the definitions in the metrics module docstring."""
    p, r, n, a = [], [], [], []
    for rec, rel in zip(recs, relevant, strict=True):
        if not rel:
            continue
        hits = [1 if item in rel else 0 for item in rec[:k]]
        p.append(sum(hits) / k)
        r.append(sum(hits) / len(rel))
        dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
        idcg = sum(1 / math.log2(i + 2) for i in range(min(k, len(rel))))
        n.append(dcg / idcg)
        a.append(sum(sum(hits[: i + 1]) / (i + 1) * h for i, h in enumerate(hits)) / min(k, len(rel)))
    return {"precision": np.mean(p), "recall": np.mean(r), "ndcg": np.mean(n), "map": np.mean(a)}


def as_csr(relevant: list[set[int]], n_items: int) -> sp.csr_matrix:
    rows = [u for u, items in enumerate(relevant) for _ in items]
    cols = [i for items in relevant for i in sorted(items)]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(relevant), n_items))


def test_hand_computed_example():
    recs = np.array([[3, 1, 2], [0, 4, -1]])
    relevant = as_csr([{1, 5}, set()], n_items=6)
    m = ranking_metrics(recs, relevant, n_items=6)
    assert m["users_evaluated"] == 1
    assert m["precision@3"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx(1 / 2)
    assert m["ndcg@3"] == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    assert m["map@3"] == pytest.approx((1 / 2) / 2)
    assert m["coverage"] == pytest.approx(5 / 6)  # items 0..4 recommended; -1 is an empty slot


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference_on_random_data(seed):
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 200, 60, 10
    recs = np.stack([rng.choice(n_items, k, replace=False) for _ in range(n_users)])
    relevant = [set(rng.choice(n_items, rng.integers(0, 25), replace=False).tolist()) for _ in range(n_users)]
    got = ranking_metrics(recs, as_csr(relevant, n_items), n_items)
    want = reference(recs.tolist(), relevant, k)
    for name, value in want.items():
        assert got[f"{name}@{k}"] == pytest.approx(value)


def test_perfect_list_scores_one_even_with_more_relevant_than_k():
    recs = np.array([[0, 1, 2]])
    m = ranking_metrics(recs, as_csr([{0, 1, 2, 3, 4}], 6), 6)
    assert m["ndcg@3"] == pytest.approx(1.0) and m["map@3"] == pytest.approx(1.0) and m["precision@3"] == 1.0


def test_every_metric_on_a_hand_computed_case():
    # k = 3, 8 items, 4 users
    recs = np.array(
        [
            [1, 2, 3],  # R = {2, 5}: hits 0 1 0
            [4, -1, -1],  # R = {4}: hits 1 0 0 (empty slots are misses and still count in precision's k)
            [0, 1, 6],  # R = {0, 3, 5, 6, 7}, |R| = 5 > k: hits 1 0 1
            [3, 4, 5],  # R = {}: skipped by every per-user metric, but its items count for coverage
        ]
    )
    relevant = as_csr([{2, 5}, {4}, {0, 3, 5, 6, 7}, set()], n_items=8)
    m = ranking_metrics(recs, relevant, n_items=8)
    d2, d3 = 1 / math.log2(3), 1 / math.log2(4)  # discounts of ranks 2 and 3 (rank 1: 1)
    assert m["users_evaluated"] == 3
    # precision = mean(1/3, 1/3, 2/3) = 4/9
    assert m["precision@3"] == pytest.approx(4 / 9)
    # recall = mean(1/2, 1/1, 2/5) = 1.9 / 3
    assert m["recall@3"] == pytest.approx(1.9 / 3)
    # ndcg: u0 = d2 / (1 + d2)           (IDCG of min(3, 2) = 2 hits)
    #       u1 = 1 / 1                   (IDCG of min(3, 1) = 1 hit)
    #       u2 = (1 + d3) / (1 + d2 + d3) (IDCG of min(3, 5) = 3 hits, not 5)
    assert m["ndcg@3"] == pytest.approx((d2 / (1 + d2) + 1 + (1 + d3) / (1 + d2 + d3)) / 3)
    # AP: u0 = (1/2) / min(3, 2) = 1/4;  u1 = (1/1) / 1 = 1;  u2 = (1/1 + 2/3) / min(3, 5) = 5/9
    assert m["map@3"] == pytest.approx((1 / 4 + 1 + 5 / 9) / 3)
    # coverage: {1, 2, 3} | {4} | {0, 1, 6} | {3, 4, 5} = 7 distinct of 8 (-1 is not an item)
    assert m["coverage"] == pytest.approx(7 / 8)


def test_no_relevant_items_at_all_scores_zero():
    m = ranking_metrics(np.array([[0, 1], [1, 2]]), as_csr([set(), set()], 4), 4)
    assert m == {
        "precision@2": 0.0,
        "recall@2": 0.0,
        "ndcg@2": 0.0,
        "map@2": 0.0,
        "coverage": 0.75,
        "users_evaluated": 0,
    }


def test_evaluate_asks_the_ranker_only_for_users_with_relevant_items():
    relevant = as_csr([{1}, set(), {0, 3}], n_items=6)
    asked = []

    def rank(users: np.ndarray) -> np.ndarray:
        asked.append(users.tolist())
        lists = {0: [1, 2], 1: [4, 5], 2: [3, 5]}
        return np.array([lists[u] for u in users.tolist()])

    m = evaluate(rank, relevant, k=2)
    assert asked == [[0, 2]]
    # u0: [1, 2] vs {1}: hits 1 0;  u2: [3, 5] vs {0, 3}: hits 1 0
    assert m["precision@2"] == pytest.approx(0.5)  # mean(1/2, 1/2)
    assert m["recall@2"] == pytest.approx(0.75)  # mean(1/1, 1/2)
    assert m["ndcg@2"] == pytest.approx((1 + 1 / (1 + 1 / math.log2(3))) / 2)  # u2's IDCG has 2 hits
    assert m["map@2"] == pytest.approx((1 + 1 / 2) / 2)  # u2: (1/1) / min(2, 2)
    assert m["coverage"] == pytest.approx(4 / 6)  # {1, 2} | {3, 5}; user 1's row stays empty (-1)
    assert m["users_evaluated"] == 2


def test_evaluate_without_relevant_items_never_calls_the_ranker():
    def rank(users: np.ndarray) -> np.ndarray:
        raise AssertionError("no user should be ranked")

    m = evaluate(rank, as_csr([set(), set()], 3), k=2)
    assert m["users_evaluated"] == 0 and m["ndcg@2"] == 0.0 and m["coverage"] == 0.0


def test_a_model_that_recommends_nothing_scores_zero():
    m = ranking_metrics(np.full((2, 3), -1), as_csr([{1}, {0, 2}], 4), 4)
    assert m == {
        "precision@3": 0.0,
        "recall@3": 0.0,
        "ndcg@3": 0.0,
        "map@3": 0.0,
        "coverage": 0.0,
        "users_evaluated": 2,
    }


def test_headline_names_and_table():
    assert headline_names(5) == ["precision@5", "recall@5", "ndcg@5", "map@5", "coverage"]
    table = metrics_table(
        {
            "als": {
                "precision@5": 0.1,
                "recall@5": 0.2,
                "ndcg@5": 0.3,
                "map@5": 0.25,
                "coverage": 0.5,
                "users_evaluated": 9,
            },
            "popularity": {"precision@5": 0.05, "recall@5": 0.1, "ndcg@5": 0.125, "map@5": 0.0, "coverage": 0.01},
        }
    )
    assert table.splitlines() == [
        "| model | precision@5 | recall@5 | ndcg@5 | map@5 | coverage |",
        "|---|---|---|---|---|---|",
        "| als | 0.1000 | 0.2000 | 0.3000 | 0.2500 | 0.5000 |",
        "| popularity | 0.0500 | 0.1000 | 0.1250 | 0.0000 | 0.0100 |",
    ]


def leave_out(n_held: list[int], seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """A random 40 x 30 interaction matrix with n_held[u % len(n_held)] items of user u held out."""
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    train_rows, train_cols, test_rows, test_cols = [], [], [], []
    for u in range(n_users):
        items = rng.choice(n_items, 12, replace=False)
        held = n_held[u % len(n_held)]
        test_rows += [u] * held
        test_cols += items[:held].tolist()
        train_rows += [u] * (12 - held)
        train_cols += items[held:].tolist()

    def csr(rows: list[int], cols: list[int]) -> sp.csr_matrix:
        return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n_users, n_items))

    return csr(train_rows, train_cols), csr(test_rows, test_cols)


# implicit 0.7.3 (evaluation.pyx), per user u with test set R_u and K slots:
#   ndcg = mean_u sum_i h_i / log2(i + 2) / IDCG(min(K, |R_u|))   -- our ndcg@K
#   map  = mean_u sum_i h_i * (hits so far / (i + 1)) / min(K, |R_u|)   -- our map@K
#   "precision" = sum_u hits_u / sum_u min(K, |R_u|)   -- micro-averaged, not precision@K.
# ndcg and map therefore agree for any |R_u|. implicit's "precision" equals our precision@K when every
# |R_u| >= K (denominator K for all), and our recall@K when every |R_u| is the same r <= K
# (sum hits / (n r) = mean(hits / r)); with mixed |R_u| it is neither, which the test also shows.
@pytest.mark.parametrize(
    ("n_held", "k", "implicit_precision_is"),
    [([1, 2, 3, 4], 3, None), ([2], 4, "recall"), ([5], 3, "precision")],
)
def test_agrees_with_implicit_ranking_metrics_at_k(n_held, k, implicit_precision_is):
    from implicit.evaluation import ranking_metrics_at_k

    train, test = leave_out(n_held, seed=k)
    model = new_model("als", {"factors": 4, "iterations": 3, "num_threads": 1, "random_state": 0}).fit(train)
    theirs = ranking_metrics_at_k(model.model, train, test, K=k, show_progress=False)
    ours = evaluate(rank_users(model, train, k), test, k)  # the same model.recommend call, so the same lists
    assert ours["users_evaluated"] == 40
    assert ours[f"ndcg@{k}"] > 0.05  # the model hits something, so the comparison is not 0 == 0
    assert ours[f"ndcg@{k}"] == pytest.approx(theirs["ndcg"])
    assert ours[f"map@{k}"] == pytest.approx(theirs["map"])
    if implicit_precision_is is not None:
        assert ours[f"{implicit_precision_is}@{k}"] == pytest.approx(theirs["precision"])
    else:
        assert theirs["precision"] != pytest.approx(ours[f"precision@{k}"])
        assert theirs["precision"] != pytest.approx(ours[f"recall@{k}"])


def test_ranked_once_scores_the_users_once_and_answers_any_of_them():
    calls = []

    def rank(users):
        calls.append(users.copy())
        return np.column_stack([users * 10, users * 10 + 1])

    ranker = ranked_once(rank, np.array([1, 3]), n_users=5, k=2)
    assert ranker(np.array([3])).tolist() == [[30, 31]]
    assert ranker(np.array([1, 3])).tolist() == [[10, 11], [30, 31]]
    assert ranker(np.array([0])).tolist() == [[-1, -1]]  # not ranked: an empty list
    assert len(calls) == 1 and calls[0].tolist() == [1, 3]
