"""Vectorised ranking metrics agree with their textbook per-user definitions."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.domain.metrics import ranking_metrics


def reference(recs: list[list[int]], relevant: list[set[int]], k: int) -> dict[str, float]:
    """Per-user loop over the definitions in the metrics module docstring."""
    p, r, n, a = [], [], [], []
    for rec, rel in zip(recs, relevant):
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
