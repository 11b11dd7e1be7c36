"""Top-k selection shared by the families: from implicit's lists, from dense scores, from sparse scores.

Every function returns item indices, best first with ties broken by item index where the scores allow,
and pads with -1 to exactly k slots, so every family's lists have one shape.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
from typing import Any, cast

import numpy as np
import scipy.sparse as sp
from implicit.recommender_base import RecommenderBase
from threadpoolctl import ThreadpoolController


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The process's thread pools, inspected once: `threadpool_limits` inspects them on every call (~3 ms),
    which would be most of the time of an online request; made at the first ranking, after every BLAS loaded."""
    return ThreadpoolController()


# True once `pin_blas_to_one_thread` has run: rankings then skip limiting and restoring the pools.
_blas_pinned = False


def pin_blas_to_one_thread() -> Any:
    """Limit BLAS to one thread for the rest of the process, so no ranking limits and restores it again.

    For a process that ranks one list at a time on one thread for its whole life (the online service):
    limiting and restoring costs about 45 us a call, against about 0.7 ms for a known user's list at 10 M
    events. Call it after the model's libraries are loaded (a BLAS loaded later is not limited).
    """
    global _blas_pinned
    limiter = blas_controller().limit(limits=1, user_api="blas")  # applied now; the process never restores it
    _blas_pinned = True
    return limiter


def _single_threaded_blas() -> contextlib.AbstractContextManager[object]:
    return contextlib.nullcontext() if _blas_pinned else blas_controller().limit(limits=1, user_api="blas")


def top_k_from_implicit(
    model: RecommenderBase,
    userids: np.ndarray,
    rows: sp.csr_matrix,
    k: int,
    recalculate_user: bool = False,
    excluded: np.ndarray | None = None,
) -> np.ndarray:
    """Top-k unseen item indices for `userids`, whose histories are `rows` (one row each), -1 padded.

    Items where `excluded` is True are never returned (implicit's `filter_items`).
    """
    if len(userids) == 0:
        return np.empty((0, k), dtype=np.int64)
    extra: dict[str, Any] = {"recalculate_user": True} if recalculate_user else {}
    if excluded is not None:
        extra["filter_items"] = np.flatnonzero(excluded).astype(np.int32)
    with _single_threaded_blas():
        # implicit declares `recommend` on the base class without a return type.
        ids, scores = cast(
            tuple[np.ndarray, np.ndarray],
            model.recommend(userids, rows, N=k, filter_already_liked_items=True, **extra),
        )
    ids = np.asarray(ids, dtype=np.int64).reshape(len(userids), -1)
    scores = np.asarray(scores).reshape(len(userids), -1)
    # implicit fills slots it has no candidate for with -FLT_MAX (item 0 or an already seen item),
    # and item-kNN can return seen items at score 0 when few neighbours score: blank them.
    valid = np.isfinite(scores) & (scores > np.finfo(np.float32).min) & (ids >= 0)
    rows_of = np.broadcast_to(np.arange(len(userids))[:, None], ids.shape)
    if valid.any():
        valid[valid] = np.asarray(rows[rows_of[valid], ids[valid]]).ravel() == 0
    if valid.any():
        # Past the end of a small catalogue implicit repeats an item: keep each item's first slot only.
        positions = np.flatnonzero(valid)
        _, first = np.unique(rows_of.ravel()[positions] * rows.shape[1] + ids.ravel()[positions], return_index=True)
        unique = np.zeros(valid.size, dtype=bool)
        unique[positions[first]] = True
        valid &= unique.reshape(valid.shape)
    # Real items first, in the model's order; -1 pads the tail to exactly k slots.
    order = np.argsort(~valid, axis=1, kind="stable")
    ids = np.take_along_axis(np.where(valid, ids, -1), order, axis=1)[:, :k]
    if ids.shape[1] < k:
        ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
    return ids


def top_k_dense(scores: np.ndarray, seen: sp.csr_matrix, k: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """Top-k of dense `scores` (users x items) outside `seen` and `excluded`, best first, ties by item; -1 padded."""
    scores = scores.astype(np.float32, copy=True)
    coo = seen.tocoo()
    scores[coo.row, coo.col] = -np.inf
    if excluded is not None:
        scores[:, excluded] = -np.inf
    n_items = scores.shape[1]
    width = min(k, n_items)
    if width == 0:
        return np.full((scores.shape[0], k), -1, dtype=np.int64)
    # argpartition then a sort of the k candidates by (score desc, item asc): deterministic for a
    # given row, so serving one user reproduces the offline ranking of a block exactly.
    candidates = (
        np.argpartition(-scores, width - 1, axis=1)[:, :width]
        if width < n_items
        else np.tile(np.arange(n_items), (scores.shape[0], 1))
    )
    part = np.take_along_axis(scores, candidates, axis=1)
    order = np.take_along_axis(candidates, np.lexsort((candidates, -part), axis=1), axis=1)
    ids = np.where(np.isfinite(np.take_along_axis(scores, order, axis=1)), order, -1).astype(np.int64)
    if ids.shape[1] < k:
        ids = np.pad(ids, ((0, 0), (0, k - ids.shape[1])), constant_values=-1)
    return ids


def top_k_sparse(scores: sp.csr_matrix, k: int) -> np.ndarray:
    """Top-k stored entries of each row of `scores`, best first, ties by item index; -1 padded.

    Rows are grouped by length (powers of two) and padded into dense blocks, so a linear-time
    partition finds each row's k-th best score; only entries at or above it are then sorted.
    """
    n_rows = scores.shape[0]
    lengths = np.diff(scores.indptr)
    threshold = np.full(n_rows, -np.inf)
    bucket = np.where(lengths > k, np.ceil(np.log2(np.maximum(lengths, 1))), -1).astype(np.int64)
    # Rows reordered by bucket: each bucket is then one contiguous slice of the data.
    by_bucket = np.argsort(bucket, kind="stable")
    grouped = sp.csr_matrix(scores[by_bucket])
    bounds = np.searchsorted(bucket[by_bucket], np.arange(bucket.max(initial=-1) + 2))
    for lo, hi in itertools.pairwise(bounds.tolist()):
        if lo == hi:
            continue
        first, last = int(grouped.indptr[lo]), int(grouped.indptr[hi])
        row = np.repeat(np.arange(hi - lo), np.diff(grouped.indptr[lo : hi + 1]))
        dense = np.full((hi - lo, int(lengths[by_bucket[lo:hi]].max())), -np.inf)
        dense[row, np.arange(first, last) - grouped.indptr[lo + row]] = grouped.data[first:last]
        threshold[by_bucket[lo:hi]] = -np.partition(-dense, k - 1, axis=1)[:, k - 1]
    row_of = np.repeat(np.arange(n_rows), lengths)
    keep = scores.data >= threshold[row_of]
    row, item, value = row_of[keep], scores.indices[keep], scores.data[keep]
    order = np.lexsort((item, -value, row))
    row, item = row[order], item[order]
    rank = np.arange(len(row)) - np.searchsorted(row, np.arange(n_rows))[row]
    top = rank < k
    out = np.full((n_rows, k), -1, dtype=np.int64)
    out[row[top], rank[top]] = item[top]
    return out
