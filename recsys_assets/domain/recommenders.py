"""The recommenders: implicit ALS and the baselines it must beat, fitted, stored and queried.

Every model is an implicit recommender object, so all of them recommend through the same
library call (`recommend(..., filter_already_liked_items=True)`).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from functools import partial
from typing import cast

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

from recsys_assets.domain.params import ALSParams

Log = Callable[[str], None]


def confidence(matrix: sp.csr_matrix, params: ALSParams) -> sp.csr_matrix:
    """BM25-damped confidences: heavy users and popular items stop dominating the factors."""
    if params.bm25_k1 <= 0:
        return matrix
    # implicit annotates K1 as an int, but BM25's K1 is a real number (the default config uses 100.0).
    weighted = bm25_weight(matrix, K1=params.bm25_k1, B=params.bm25_b)  # pyright: ignore[reportArgumentType]
    return sp.csr_matrix(weighted).astype(np.float32)


def new_als(**params) -> AlternatingLeastSquares:
    """An ALS model built under a single-threaded BLAS (implicit warns, rightly, about anything else)."""
    with threadpool_limits(1, "blas"):
        return AlternatingLeastSquares(**params)


def fit_als(matrix: sp.csr_matrix, params: ALSParams, log: Log | None = None) -> AlternatingLeastSquares:
    """Fit ALS on a users x items matrix, on the CPU, with BLAS held to one thread.

    Raises:
        ValueError: the matrix holds a non-finite confidence, or the fit diverged to non-finite factors
            (one inf or NaN spreads to every factor, and the model would silently recommend nothing useful).
    """
    bad = int(np.count_nonzero(~np.isfinite(matrix.data)))
    if bad:
        raise ValueError(f"refusing to train: {bad:,} of {matrix.nnz:,} confidences are not finite (inf or NaN)")
    model = new_als(**params.model_dump(exclude={"bm25_k1", "bm25_b"}), calculate_training_loss=log is not None)

    def progress(iteration: int, elapsed: float, loss: float) -> None:
        if log is not None:
            log(f"ALS iteration {iteration + 1}/{params.iterations}: loss {loss:.5f} ({elapsed:.2f}s)")

    # BLAS threads inside implicit's own threads oversubscribe the cores and slow ALS down badly.
    with threadpool_limits(1, "blas"):
        model.fit(confidence(matrix, params), show_progress=False, callback=progress)
    if not (np.isfinite(model.user_factors).all() and np.isfinite(model.item_factors).all()):
        raise ValueError("ALS diverged: the fitted factors are not finite; check the input weights for absurd values")
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
    """An ALS model from stored factors (a bundle's, or a popularity vector)."""
    model = new_als(factors=item_factors.shape[1])
    model.user_factors, model.item_factors = user_factors, item_factors
    return model


def model_to_bytes(model: RecommenderBase) -> bytes:
    """implicit's own `.npz` serialisation (no pickle)."""
    buffer = io.BytesIO()
    model.save(buffer)
    return buffer.getvalue()


def als_from_bytes(data: bytes) -> AlternatingLeastSquares:
    """An ALS (or popularity) model saved by `model_to_bytes`."""
    with threadpool_limits(1, "blas"):
        return cast(AlternatingLeastSquares, AlternatingLeastSquares.load(io.BytesIO(data)))


def knn_from_bytes(data: bytes) -> ItemItemRecommender:
    """An item-kNN model saved by `model_to_bytes`."""
    return cast(ItemItemRecommender, ItemItemRecommender.load(io.BytesIO(data)))


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
        # implicit declares `recommend` on the base class without a return type.
        ids, scores = cast(
            tuple[np.ndarray, np.ndarray],
            model.recommend(users, seen[users], N=k, filter_already_liked_items=True, **extra),
        )
    ids = np.asarray(ids, dtype=np.int64).reshape(len(users), -1)
    scores = np.asarray(scores).reshape(len(users), -1)
    # implicit fills slots it has no candidate for with -FLT_MAX (item 0 or an already seen item),
    # and item-kNN can return seen items at score 0 when few neighbours score: blank them.
    valid = np.isfinite(scores) & (scores > np.finfo(np.float32).min) & (ids >= 0)
    rows = np.broadcast_to(users[:, None], ids.shape)
    if valid.any():
        valid[valid] = np.asarray(seen[rows[valid], ids[valid]]).ravel() == 0
    if valid.any():
        # Past the end of a small catalogue implicit repeats an item: keep each item's first slot only.
        positions = np.flatnonzero(valid)
        _, first = np.unique(rows.ravel()[positions] * seen.shape[1] + ids.ravel()[positions], return_index=True)
        unique = np.zeros(valid.size, dtype=bool)
        unique[positions[first]] = True
        valid &= unique.reshape(valid.shape)
    # Real items first, in the model's order; -1 pads the tail to exactly k slots.
    order = np.argsort(~valid, axis=1, kind="stable")
    ids = np.take_along_axis(np.where(valid, ids, -1), order, axis=1)[:, :k]
    if ids.shape[1] < k:
        ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
    return ids


def ranker(
    model: RecommenderBase, seen: sp.csr_matrix, k: int, recalculate_user: bool = False
) -> Callable[[np.ndarray], np.ndarray]:
    """`model`'s top-k for given users from their `seen` rows: the `Ranker` the metrics score."""
    return partial(_recommend_users, model, seen, k, recalculate_user)


def _recommend_users(
    model: RecommenderBase, seen: sp.csr_matrix, k: int, recalculate_user: bool, users: np.ndarray
) -> np.ndarray:
    return recommend(model, seen, users, k, recalculate_user=recalculate_user)
