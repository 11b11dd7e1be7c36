"""Candidate model families behind one interface: fit, recommend for given users, save and load.

Every family is fitted on a users x items confidence matrix (optionally with the age in days of
each interaction, for time decay and recent popularity) and recommends from a *binary* history:
the seen items of each user, one row per requested user. That is the scoring contract a bundle
is served with (a user id plus the ids of the items they saw), so the offline evaluation and the
serving API rank with exactly the same inputs. Models are saved as `.npz` arrays (no pickle);
their parameters travel as JSON in the training report and the manifest.
"""

from __future__ import annotations

import functools
import io
import itertools
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, cast

import numpy as np
import scipy.sparse as sp
from implicit._nearest_neighbours import NearestNeighboursScorer
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, ItemItemRecommender, bm25_weight
from implicit.recommender_base import RecommenderBase
from implicit.utils import ParameterWarning
from threadpoolctl import ThreadpoolController, threadpool_limits

from recsys_assets.domain.params import (
    ALSParams,
    BPRParams,
    EASEParams,
    FamilyParams,
    ItemKNNParams,
    PopularityParams,
    RecentPopularityParams,
)

FamilyName = Literal["popularity", "recent_popularity", "item_knn", "ease", "als", "bpr", "content", "hybrid"]
FAMILIES: tuple[FamilyName, ...] = (
    "popularity",
    "recent_popularity",
    "item_knn",
    "ease",
    "als",
    "bpr",
    "content",
    "hybrid",
)
# Families that score items from their features (domain/content.py): they need an item side to fit.
CONTENT_FAMILIES = ("content", "hybrid")
# Called after each iteration of an iterative model with (iteration, model): lets a search prune it.
IterationCallback = Callable[[int, "Recommender"], None]
# Users are scored in blocks so a dense users x items score matrix stays a few hundred MB at most.
SCORE_BLOCK_CELLS = 20_000_000
# Item columns of the EASE Gram matrix computed per sparse product.
GRAM_BLOCK = 2048
# The saved model array holding `Recommender.excluded`.
EXCLUDED_ARRAY = "excluded_items"


def decayed(matrix: sp.csr_matrix, ages: sp.csr_matrix | None, half_life_days: float | None) -> sp.csr_matrix:
    """`matrix` with each confidence multiplied by 0.5^(age / half-life); unchanged when decay is off.

    Every family's `fit` takes its input through here, so this is where non-finite input is refused.

    Raises:
        ValueError: the matrix holds a non-finite confidence (one inf or NaN spreads through a whole model).
    """
    bad = int(np.count_nonzero(~np.isfinite(matrix.data)))
    if bad:
        raise ValueError(f"refusing to train: {bad:,} of {matrix.nnz:,} confidences are not finite (inf or NaN)")
    if half_life_days is None or ages is None:
        return matrix
    weights = np.power(0.5, ages_aligned(matrix, ages) / half_life_days).astype(np.float32)
    return sp.csr_matrix((matrix.data * weights, matrix.indices, matrix.indptr), shape=matrix.shape)


def ages_aligned(matrix: sp.csr_matrix, ages: sp.csr_matrix) -> np.ndarray:
    """The age of every stored entry of `matrix`, in its storage order."""
    if (
        ages.nnz == matrix.nnz
        and np.array_equal(ages.indptr, matrix.indptr)
        and np.array_equal(ages.indices, matrix.indices)
    ):
        return np.asarray(ages.data, dtype=np.float64)
    coo = matrix.tocoo()
    return np.asarray(ages[coo.row, coo.col], dtype=np.float64).ravel()


def binary(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Which items each user saw, as ones: the history a model recommends from."""
    seen = sp.csr_matrix(((matrix.data != 0).astype(np.float32), matrix.indices, matrix.indptr), shape=matrix.shape)
    seen.eliminate_zeros()
    return seen


class Recommender(ABC):
    """A fitted (or loaded) model of one family."""

    family: ClassVar[FamilyName]
    params_type: ClassVar[type[FamilyParams]]
    # Whether a user the model was not trained on can be scored from their history.
    folds_in: ClassVar[bool] = True
    # Whether the family takes item features (`new_model(..., items=)`); the others ignore them.
    uses_items: ClassVar[bool] = False

    # Item columns never recommended (True: excluded), e.g. postings closed at the scoring day; None: none.
    excluded: np.ndarray | None = None

    def __init__(self, params: FamilyParams) -> None:
        self.params = params

    def exclude_items(self, mask: np.ndarray | None) -> Recommender:
        """Never recommend the item columns where `mask` is True (None or all False: exclude nothing).

        This is the one mechanism that keeps closed postings out of every family's lists: it is set
        from the catalogue (`new_model(..., items=)`, the evaluation, the champion's scoring), saved
        with the model, and applied by the shared top-k functions and implicit's `filter_items`.
        """
        self.excluded = None if mask is None or not np.any(mask) else np.asarray(mask, dtype=bool).copy()
        return self

    @abstractmethod
    def fit(
        self, matrix: sp.csr_matrix, ages: sp.csr_matrix | None = None, callback: IterationCallback | None = None
    ) -> Recommender:
        """Fit on a users x items confidence matrix; `ages` (days, same entries) drives time decay."""

    @abstractmethod
    def recommend(self, users: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
        """Top-k unseen item indices per user, -1 padded; `seen` has one binary row per entry of `users`.

        `users` are training row indices, or -1 for a user the model was not trained on.
        """

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """What `load` needs besides the parameters."""

    @classmethod
    @abstractmethod
    def from_arrays(cls, params: FamilyParams, arrays: Mapping[str, np.ndarray]) -> Recommender: ...

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        excluded = {} if self.excluded is None else {EXCLUDED_ARRAY: self.excluded}
        np.savez(buffer, allow_pickle=False, **self.arrays(), **excluded)
        return buffer.getvalue()


@functools.cache
def blas_controller() -> ThreadpoolController:
    """The process's thread pools, inspected once: `threadpool_limits` inspects them on every call (~3 ms),
    which would be most of the time of an online request; made at the first ranking, after every BLAS loaded."""
    return ThreadpoolController()


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
    with blas_controller().limit(limits=1, user_api="blas"):
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


class DenseScorer(Recommender):
    """A family whose scores for a block of users are a dense matrix computed from their history."""

    @abstractmethod
    def scores(self, seen: sp.csr_matrix) -> np.ndarray: ...

    def recommend(self, users: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
        n_items = seen.shape[1]
        block = max(1, SCORE_BLOCK_CELLS // max(n_items, 1))
        out = np.full((len(users), k), -1, dtype=np.int64)
        for start in range(0, len(users), block):
            rows = seen[start : start + block]
            out[start : start + block] = top_k_dense(self.scores(rows), rows, k, self.excluded)
        return out


class Popularity(DenseScorer):
    """Items by how many users interacted with them (decayed by age when a half-life is set)."""

    family = "popularity"
    params_type = PopularityParams

    def __init__(self, params: FamilyParams, item_scores: np.ndarray | None = None) -> None:
        super().__init__(params)
        self.item_scores = item_scores

    def _counted(self, matrix: sp.csr_matrix, ages: sp.csr_matrix | None) -> sp.csr_matrix:
        return decayed(binary(matrix), ages, self.params.half_life_days)

    def fit(self, matrix, ages=None, callback=None):
        self.item_scores = np.asarray(self._counted(matrix, ages).sum(axis=0), dtype=np.float32).ravel()
        return self

    def scores(self, seen):
        assert self.item_scores is not None, "fit or load the model first"
        return np.broadcast_to(self.item_scores, (seen.shape[0], len(self.item_scores)))

    def recommend(self, users, seen, k):
        """The same lists as `top_k_dense` on the scores, without a dense users x items matrix.

        Every user shares one item order (score desc, item asc), so a user's list is the first k
        positions of that order they have not seen: only seen items ranked near the top matter.
        Excluded items are left out of the order.
        """
        assert self.item_scores is not None, "fit or load the model first"
        order = np.lexsort((np.arange(len(self.item_scores)), -self.item_scores.astype(np.float32)))
        if self.excluded is not None:
            order = order[~self.excluded[order]]
        n_items = len(order)
        # Excluded items sit past the end of the order, where no block looks.
        position = np.full(len(self.item_scores), n_items, dtype=np.int64)
        position[order] = np.arange(n_items)
        seen = sp.csr_matrix(seen)
        out = np.full((len(users), k), -1, dtype=np.int64)
        per_user = np.diff(seen.indptr)
        start = 0
        while start < len(users):
            # A block wide enough for its heaviest user and small enough to stay a bounded matrix.
            heaviest = np.maximum.accumulate(per_user[start : start + SCORE_BLOCK_CELLS // (k + 1)])
            widths = np.minimum(n_items, k + heaviest)
            stop = start + max(1, int(np.count_nonzero(widths * np.arange(1, len(widths) + 1) <= SCORE_BLOCK_CELLS)))
            width = int(widths[stop - start - 1])
            rows = seen[start:stop]
            taken = np.zeros((stop - start, width), dtype=bool)
            row_of = np.repeat(np.arange(stop - start), np.diff(rows.indptr))
            ranked = position[rows.indices]
            near_top = ranked < width
            taken[row_of[near_top], ranked[near_top]] = True
            first = np.argsort(taken, axis=1, kind="stable")[:, :k]
            ids = np.where(np.take_along_axis(taken, first, axis=1), -1, order[first])
            out[start:stop, : ids.shape[1]] = ids
            start = stop
        return out

    def arrays(self):
        assert self.item_scores is not None
        return {"item_scores": self.item_scores}

    @classmethod
    def from_arrays(cls, params, arrays):
        return cls(params, np.asarray(arrays["item_scores"]))


class RecentPopularity(Popularity):
    """Popularity over the last `days` days before the training data's end."""

    family = "recent_popularity"
    params_type = RecentPopularityParams

    def _counted(self, matrix, ages):
        if ages is None:
            raise ValueError("recent popularity needs the interactions' ages")
        assert isinstance(self.params, RecentPopularityParams)
        counted = super()._counted(matrix, ages)
        recent = ages_aligned(matrix, ages) <= self.params.days
        return sp.csr_matrix((counted.data * recent, counted.indices, counted.indptr), shape=counted.shape)


class ImplicitFamily(Recommender):
    """A family backed by an implicit recommender; recommendations go through implicit's `recommend`."""

    model: RecommenderBase | None = None

    def _top_k(self, users: np.ndarray, seen: sp.csr_matrix, k: int, recalculate: bool) -> np.ndarray:
        assert self.model is not None, "fit or load the model first"
        return top_k_from_implicit(self.model, users, seen, k, recalculate_user=recalculate, excluded=self.excluded)


class ItemKNN(ImplicitFamily):
    """Item-item nearest neighbours (implicit), BM25- or cosine-weighted."""

    family = "item_knn"
    params_type = ItemKNNParams

    def __init__(self, params: FamilyParams, similarity: sp.csr_matrix | None = None) -> None:
        super().__init__(params)
        if similarity is not None:
            self.model = ItemItemRecommender()
            self.model.similarity = similarity
            self.model.scorer = NearestNeighboursScorer(similarity)

    def fit(self, matrix, ages=None, callback=None):
        assert isinstance(self.params, ItemKNNParams)
        kind = BM25Recommender if self.params.similarity == "bm25" else CosineRecommender
        model = kind(K=self.params.neighbours)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # implicit's BM25 fit hands its own COO intermediate to a CSR-only kernel and warns about itself.
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(decayed(matrix, ages, self.params.half_life_days), show_progress=False)
        self.model = model
        return self

    def recommend(self, users, seen, k):
        """Top-k of `seen @ similarity` outside `seen`, best first, ties by item index; -1 padded.

        Item-kNN scores from the history alone, so every user is "folded in". This is implicit's
        scoring done as one sparse product per block of users instead of a Python call per user.
        """
        assert isinstance(self.model, ItemItemRecommender) and self.model.similarity is not None
        similarity = sp.csr_matrix(self.model.similarity, dtype=np.float64)
        history = sp.csr_matrix(seen, dtype=np.float64)
        out = np.full((len(users), k), -1, dtype=np.int64)
        # Rows per block so the sparse score matrix stays near SCORE_BLOCK_CELLS entries.
        per_row = max(1.0, history.nnz / max(history.shape[0], 1) * similarity.nnz / max(similarity.shape[0], 1))
        block = max(1, int(SCORE_BLOCK_CELLS // 4 / per_row))
        for start in range(0, history.shape[0], block):
            rows = history[start : start + block]
            scores = sp.csr_matrix(rows @ similarity)
            # Seen items drop out: their score becomes exactly zero and zeros are not candidates.
            scores = sp.csr_matrix(scores - scores.multiply(rows != 0))
            if self.excluded is not None:
                scores.data[self.excluded[scores.indices]] = 0.0
            scores.eliminate_zeros()
            out[start : start + block] = top_k_sparse(scores, k)
        return out

    def arrays(self):
        assert isinstance(self.model, ItemItemRecommender) and self.model.similarity is not None
        similarity = sp.csr_matrix(self.model.similarity)
        return {
            "data": similarity.data,
            "indices": similarity.indices,
            "indptr": similarity.indptr,
            "shape": np.asarray(similarity.shape),
        }

    @classmethod
    def from_arrays(cls, params, arrays):
        rows, columns = (int(n) for n in arrays["shape"])
        return cls(params, sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(rows, columns)))


class FactorFamily(ImplicitFamily):
    """Matrix factorisation (implicit ALS or BPR): stored user and item factors."""

    def recommend(self, users, seen, k):
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), k), -1, dtype=np.int64)
        known = users >= 0
        if known.any():
            out[known] = self._top_k(users[known], seen[np.flatnonzero(known)], k, recalculate=False)
        if (~known).any() and self.folds_in:
            unknown = np.flatnonzero(~known)
            out[unknown] = self._top_k(np.zeros(len(unknown), np.int64), seen[unknown], k, recalculate=True)
        return out

    def arrays(self):
        assert self.model is not None
        return {
            "user_factors": np.asarray(self.model.user_factors),  # pyright: ignore[reportAttributeAccessIssue]
            "item_factors": np.asarray(self.model.item_factors),  # pyright: ignore[reportAttributeAccessIssue]
        }


def _new_als(params: ALSParams) -> AlternatingLeastSquares:
    """An ALS model built under a single-threaded BLAS (implicit warns, rightly, about anything else)."""
    with threadpool_limits(1, "blas"):
        # Decay and BM25 weighting shape the confidences before `fit`; the rest are implicit's own arguments.
        return AlternatingLeastSquares(**params.model_dump(exclude={"half_life_days", "bm25_k1", "bm25_b"}))


class ALS(FactorFamily):
    """Implicit ALS on BM25-weighted (and optionally decayed) confidence; folds users in by its closed form."""

    family = "als"
    params_type = ALSParams

    def fit(self, matrix, ages=None, callback=None):
        assert isinstance(self.params, ALSParams)
        conf = decayed(matrix, ages, self.params.half_life_days)
        if self.params.bm25_k1 > 0:
            # implicit annotates K1 as an int, but BM25's K1 is a real number.
            conf = sp.csr_matrix(bm25_weight(conf, K1=self.params.bm25_k1, B=self.params.bm25_b)).astype(np.float32)  # pyright: ignore[reportArgumentType]
        self.model = _new_als(self.params)
        hook = None if callback is None else (lambda iteration, *_progress: callback(iteration, self))
        # BLAS threads inside implicit's own threads oversubscribe the cores and slow ALS down badly.
        with threadpool_limits(1, "blas"):
            self.model.fit(conf, show_progress=False, callback=hook)
        if not (np.isfinite(self.model.user_factors).all() and np.isfinite(self.model.item_factors).all()):
            raise ValueError(
                "ALS diverged: the fitted factors are not finite; check the input weights for absurd values"
            )
        return self

    @classmethod
    def from_arrays(cls, params, arrays):
        assert isinstance(params, ALSParams)
        loaded = cls(params)
        loaded.model = _new_als(params)
        loaded.model.user_factors = np.asarray(arrays["user_factors"])
        loaded.model.item_factors = np.asarray(arrays["item_factors"])
        return loaded


class BPR(FactorFamily):
    """Implicit BPR: a cheap pairwise-ranking factor model. It cannot fold unknown users in."""

    family = "bpr"
    params_type = BPRParams
    folds_in = False

    def _new(self) -> BayesianPersonalizedRanking:
        assert isinstance(self.params, BPRParams)
        # Decay shapes the confidences before `fit`; the rest are implicit's own arguments.
        return BayesianPersonalizedRanking(**self.params.model_dump(exclude={"half_life_days"}))

    def fit(self, matrix, ages=None, callback=None):
        assert isinstance(self.params, BPRParams)
        model = self.model = self._new()
        hook = None if callback is None else (lambda iteration, *_progress: callback(iteration, self))
        with threadpool_limits(1, "blas"):
            model.fit(decayed(matrix, ages, self.params.half_life_days), show_progress=False, callback=hook)
        return self

    @classmethod
    def from_arrays(cls, params, arrays):
        loaded = cls(params)
        model = loaded.model = loaded._new()
        model.user_factors = np.asarray(arrays["user_factors"])
        model.item_factors = np.asarray(arrays["item_factors"])
        return loaded


def available_memory_bytes() -> int:
    """Memory the kernel says is available now (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def ease_memory_bytes(n_items: int) -> int:
    """Peak memory of an EASE fit: the Gram matrix, its inverse and LAPACK's copy, plus a margin (float32)."""
    return 4 * 4 * n_items * n_items


class EASE(DenseScorer):
    """Steck's EASE: B = -P / diag(P) with P = (XᵀX + λI)⁻¹ and a zero diagonal, in float32."""

    family = "ease"
    params_type = EASEParams

    def __init__(self, params: FamilyParams, weights: np.ndarray | None = None) -> None:
        super().__init__(params)
        self.weights = weights

    def fit(self, matrix, ages=None, callback=None):
        assert isinstance(self.params, EASEParams)
        x = sp.csc_matrix(decayed(matrix, ages, self.params.half_life_days).astype(np.float32))
        # The Gram matrix is filled block by block: a sparse XᵀX of a dense-ish result is several
        # times the dense matrix's size (measured at 20 GiB for 26k items) before `toarray`.
        n_items = x.shape[1]
        gram = np.empty((n_items, n_items), dtype=np.float32)
        xt = sp.csr_matrix(x.T)
        for start in range(0, n_items, GRAM_BLOCK):
            gram[:, start : start + GRAM_BLOCK] = (xt @ x[:, start : start + GRAM_BLOCK]).toarray()
        gram[np.diag_indices_from(gram)] += np.float32(self.params.regularization)
        precision = np.linalg.inv(gram)
        del gram
        precision /= -np.diag(precision)[None, :]
        np.fill_diagonal(precision, 0.0)
        self.weights = precision
        return self

    def scores(self, seen):
        assert self.weights is not None, "fit or load the model first"
        return np.asarray(seen @ self.weights, dtype=np.float32)

    def arrays(self):
        assert self.weights is not None
        return {"weights": self.weights}

    @classmethod
    def from_arrays(cls, params, arrays):
        return cls(params, np.asarray(arrays["weights"], dtype=np.float32))


FAMILY_CLASSES: dict[str, type[Recommender]] = {
    cls.family: cls for cls in (Popularity, RecentPopularity, ItemKNN, EASE, ALS, BPR)
}


def new_model(family: str, params: Mapping[str, Any] | FamilyParams | None = None, items: Any = None) -> Recommender:
    """An unfitted model of `family` with `params` (validated against the family's parameter set).

    `items` (a `content.ItemSide`) gives every family its closed postings, which it will never
    recommend; its features go to the families that use them and are ignored by the rest.

    Raises:
        ValueError: `family` uses item features and none were given.
    """
    cls = FAMILY_CLASSES[family]
    if not isinstance(params, FamilyParams):
        params = cls.params_type.model_validate(dict(params or {}))
    if not cls.uses_items:
        model = cls(params)
    elif items is None:
        raise ValueError(f"the {family} family needs item features: build item_features from a catalogue first")
    else:
        model = cls(params, items=items)  # pyright: ignore[reportCallIssue]
    return model if items is None else model.exclude_items(items.closed)


def load_model(family: str, params: Mapping[str, Any], data: bytes) -> Recommender:
    """A model saved by `Recommender.to_bytes`, with the parameters it was trained with (and its excluded items)."""
    cls = FAMILY_CLASSES[family]
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        loaded = {k: arrays[k] for k in arrays.files}
    excluded = loaded.pop(EXCLUDED_ARRAY, None)
    return cls.from_arrays(cls.params_type.model_validate(dict(params)), loaded).exclude_items(excluded)


def rank_users(
    model: Recommender, seen: sp.csr_matrix, k: int, known_users: bool = True
) -> Callable[[np.ndarray], np.ndarray]:
    """The `Ranker` the metrics score: `model`'s top-k for training rows `users`, from their binary history."""
    history = binary(seen)

    def rank(users: np.ndarray) -> np.ndarray:
        ids = users if known_users else np.full(len(users), -1, dtype=np.int64)
        return model.recommend(ids, history[users], k)

    return rank


# The baselines every released model has to beat, fitted and scored through the same family code.
BASELINES: dict[str, tuple[FamilyName, dict[str, Any]]] = {
    "popularity": ("popularity", {}),
    "item_knn": ("item_knn", {"similarity": "bm25", "neighbours": 100}),
}


# The content families (domain/content.py) build on this module's classes and add themselves to
# FAMILY_CLASSES when their module has loaded; importing it here makes them known to every user of this one.
import recsys_assets.domain.content  # noqa: E402, F401  (after every name content.py imports from here)
