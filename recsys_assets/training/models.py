"""The recommenders: implicit ALS with a validation search, and the baselines it must beat.

Every model is an implicit recommender object, so all of them recommend through the same
library call (`recommend(..., filter_already_liked_items=True)`).
"""

from __future__ import annotations

import io
import itertools
import time
import warnings
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.nearest_neighbours import (
    BM25Recommender,
    ItemItemRecommender,
    bm25_weight,
)
from implicit.recommender_base import RecommenderBase
from implicit.utils import ParameterWarning
from threadpoolctl import threadpool_limits

from recsys_assets.evaluation.metrics import ranking_metrics

Log = Callable[[str], None]


@dataclass(frozen=True)
class ALSParams:
    factors: int
    regularization: float
    alpha: float
    iterations: int
    bm25_k1: float
    bm25_b: float
    random_state: int
    num_threads: int = 0


def confidence(matrix: sp.csr_matrix, params: ALSParams) -> sp.csr_matrix:
    """BM25-damped confidences: heavy users and popular items stop dominating the factors."""
    if params.bm25_k1 <= 0:
        return matrix
    return bm25_weight(matrix, K1=params.bm25_k1, B=params.bm25_b).tocsr().astype(np.float32)


def new_als(**params) -> AlternatingLeastSquares:
    """An ALS model built under a single-threaded BLAS (implicit warns, rightly, about anything else)."""
    with threadpool_limits(1, "blas"):
        return AlternatingLeastSquares(**params)


def fit_als(matrix: sp.csr_matrix, params: ALSParams, log: Log | None = None) -> AlternatingLeastSquares:
    """Fit ALS on a users x items matrix, on the CPU, with BLAS held to one thread."""
    model = new_als(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
        random_state=params.random_state,
        num_threads=params.num_threads,
        calculate_training_loss=log is not None,
    )

    def progress(iteration: int, elapsed: float, loss: float) -> None:
        if log is not None:
            log(f"ALS iteration {iteration + 1}/{params.iterations}: loss {loss:.5f} ({elapsed:.2f}s)")

    # BLAS threads inside implicit's own threads oversubscribe the cores and slow ALS down badly.
    with threadpool_limits(1, "blas"):
        model.fit(confidence(matrix, params), show_progress=False, callback=progress)
    return model


def popularity_model(matrix: sp.csr_matrix) -> AlternatingLeastSquares:
    """Most-interacted items first, as a rank-1 factor model (every user scores items by popularity)."""
    model = new_als(factors=1)
    model.user_factors = np.ones((matrix.shape[0], 1), dtype=np.float32)
    model.item_factors = np.asarray((matrix > 0).sum(axis=0), dtype=np.float32).reshape(-1, 1)
    return model


def item_knn_model(matrix: sp.csr_matrix, neighbours: int = 100) -> ItemItemRecommender:
    """Item-item nearest neighbours with BM25 weighting."""
    model = BM25Recommender(K=neighbours)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        # implicit's BM25 fit hands its own COO intermediate to a CSR-only kernel and warns about itself.
        warnings.simplefilter("ignore", ParameterWarning)
        model.fit(matrix, show_progress=False)
    return model


def factor_model(user_factors: np.ndarray, item_factors: np.ndarray) -> AlternatingLeastSquares:
    model = new_als(factors=item_factors.shape[1])
    model.user_factors, model.item_factors = user_factors, item_factors
    return model


def model_to_bytes(model: RecommenderBase) -> bytes:
    """implicit's own `.npz` serialisation (no pickle)."""
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def als_from_bytes(data: bytes) -> AlternatingLeastSquares:
    with threadpool_limits(1, "blas"):
        return AlternatingLeastSquares.load(io.BytesIO(data))


def knn_from_bytes(data: bytes) -> ItemItemRecommender:
    return ItemItemRecommender.load(io.BytesIO(data))


def recommend(
    model: RecommenderBase, seen: sp.csr_matrix, users: np.ndarray, k: int, recalculate_user: bool = False
) -> np.ndarray:
    """Top-k unseen item indices for `users` (rows of `seen`), -1 where fewer than k exist.

    `recalculate_user` folds users in from their `seen` rows (ALS only), so a model trained on
    other data can be scored on these users.
    """
    if len(users) == 0:
        return np.empty((0, k), dtype=np.int64)
    extra = {"recalculate_user": True} if recalculate_user else {}
    with threadpool_limits(1, "blas"):
        ids, scores = model.recommend(users, seen[users], N=k, filter_already_liked_items=True, **extra)
    ids = np.asarray(ids, dtype=np.int64).reshape(len(users), -1)
    ids[~np.isfinite(np.asarray(scores).reshape(len(users), -1))] = -1
    if ids.shape[1] < k:  # tiny catalogues: pad to a fixed width
        ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
    return ids


def evaluate(model: RecommenderBase, seen: sp.csr_matrix, relevant: sp.csr_matrix, k: int) -> dict[str, float]:
    """Ranking metrics of `model` for every user with relevant items."""
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    recs = np.full((relevant.shape[0], k), -1, dtype=np.int64)
    recs[users] = recommend(model, seen, users, k)
    return ranking_metrics(recs, relevant, n_items=seen.shape[1])


def search_als(
    fit: sp.csr_matrix,
    validation: sp.csr_matrix,
    grid: dict[str, list],
    base: ALSParams,
    k: int,
    log: Log,
) -> tuple[ALSParams, list[dict]]:
    """Pick ALS hyperparameters by NDCG@k on the validation split (never the holdout)."""
    trials = []
    names = list(grid)
    for values in itertools.product(*(grid[name] for name in names)):
        params = ALSParams(**{**asdict(base), **dict(zip(names, values))})
        started = time.perf_counter()
        metrics = evaluate(fit_als(fit, params), fit, validation, k)
        trials.append({**dict(zip(names, values)), f"ndcg@{k}": metrics[f"ndcg@{k}"],
                       "seconds": round(time.perf_counter() - started, 3)})
        log(f"search trial {len(trials)}: {dict(zip(names, values))} -> validation ndcg@{k} {metrics[f'ndcg@{k}']:.4f}")
    best = max(trials, key=lambda t: t[f"ndcg@{k}"])
    return ALSParams(**{**asdict(base), **{name: best[name] for name in names}}), trials
