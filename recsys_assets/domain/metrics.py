"""Top-k ranking metrics computed for all users at once from a recommendation matrix.

Definitions, for one user with relevant (held-out) set R, top-k list r_1..r_k and
hit indicator h_i = [r_i in R]; every metric is averaged over users with |R| > 0:

- precision@k = sum(h_i) / k
- recall@k    = sum(h_i) / |R|
- AP@k        = sum_i h_i * precision@i / min(k, |R|);  MAP@k is its mean
- NDCG@k      = DCG / IDCG with DCG = sum_i h_i / log2(i + 1) and IDCG the DCG of
                min(k, |R|) hits at the top
- coverage    = distinct items recommended to anyone / catalogue size

Dividing AP and IDCG by min(k, |R|) keeps a perfect list scoring 1 when |R| > k.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import scipy.sparse as sp

# users (row indices) -> users x k item indices, -1 for an empty slot: all the metrics need of a model.
Ranker = Callable[[np.ndarray], np.ndarray]

METRIC_NAMES = ("precision", "recall", "ndcg", "map")


def headline_names(k: int) -> list[str]:
    """The reported metrics in their display order: the four at k, then coverage."""
    return [f"{name}@{k}" for name in METRIC_NAMES] + ["coverage"]


def headline(metrics: Mapping[str, float], k: int) -> dict[str, float]:
    """The headline metrics of a full metric set: precision/recall/ndcg/map at k and coverage."""
    return {name: metrics[name] for name in headline_names(k)}


def _hits(recommendations: np.ndarray, relevant: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Hit indicators (evaluated users x k) and |R| of every user with relevant items, in row order."""
    n_users, k = recommendations.shape
    n_relevant = np.diff(relevant.indptr)
    evaluated = n_relevant > 0
    rows = np.repeat(np.arange(n_users), k)
    cols = recommendations.ravel()
    filled = cols >= 0
    hits = np.zeros(n_users * k, dtype=bool)
    # Sparse fancy indexing looks every (user, item) pair up at once.
    if filled.any():  # scipy returns a (1, 0) matrix for an empty lookup
        hits[filled] = np.asarray(relevant[rows[filled], cols[filled]]).ravel() > 0
    return hits.reshape(n_users, k)[evaluated], n_relevant[evaluated]


def _ndcg(hits: np.ndarray, n_rel: np.ndarray) -> np.ndarray:
    """NDCG@k of each row of `hits` (users x k), its ideal DCG from min(k, |R|) hits at the top."""
    k = hits.shape[1]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
    return (hits * discounts).sum(axis=1) / ideal


def ranking_metrics(recommendations: np.ndarray, relevant: sp.csr_matrix, n_items: int) -> dict[str, float]:
    """Metrics of `recommendations` (users x k item indices, -1 for an empty slot) against `relevant`.

    Row u of `recommendations` is for row u of `relevant`; users without relevant items are skipped.
    """
    k = recommendations.shape[1]
    hits, n_rel = _hits(recommendations, relevant)
    cutoff = np.minimum(n_rel, k)
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    n_hits = hits.sum(axis=1)
    cols = recommendations.ravel()
    recommended = np.unique(cols[cols >= 0])
    return {
        f"precision@{k}": float(np.mean(n_hits / k)) if len(n_rel) else 0.0,
        f"recall@{k}": float(np.mean(n_hits / n_rel)) if len(n_rel) else 0.0,
        f"ndcg@{k}": float(np.mean(_ndcg(hits, n_rel))) if len(n_rel) else 0.0,
        f"map@{k}": float(np.mean((precision_at_i * hits).sum(axis=1) / cutoff)) if len(n_rel) else 0.0,
        "coverage": float(len(recommended) / n_items) if n_items else 0.0,
        "users_evaluated": len(n_rel),
    }


def ndcg_by_user(rank: Ranker, relevant: sp.csr_matrix, k: int) -> np.ndarray:
    """NDCG@k of `rank`'s list for every user with relevant items, in row order: what a paired comparison resamples."""
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    recommendations = np.full((len(users), k), -1, dtype=np.int64)
    if len(users):
        recommendations[:] = rank(users)
    hits, n_rel = _hits(recommendations, relevant[users])
    return _ndcg(hits, n_rel)


def ranked_once(rank: Ranker, users: np.ndarray, n_users: int, k: int) -> Ranker:
    """`rank` run once for `users`; the returned ranker answers any of them from those lists.

    Each user's list depends only on that user, so several evaluations of one model (warm and cold
    holdouts, slot shares) can share one ranking instead of each scoring the users again.
    """
    lists = np.full((n_users, k), -1, dtype=np.int64)
    if len(users):
        lists[users] = rank(users)
    return lambda subset: lists[subset]


def evaluate(rank: Ranker, relevant: sp.csr_matrix, k: int) -> dict[str, float]:
    """Ranking metrics of `rank`'s top-k lists for every user with relevant items."""
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    recommendations = np.full((relevant.shape[0], k), -1, dtype=np.int64)
    if len(users):
        recommendations[users] = rank(users)
    return ranking_metrics(recommendations, relevant, n_items=relevant.shape[1])
