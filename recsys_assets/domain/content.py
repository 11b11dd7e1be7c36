"""Content-based and hybrid families: cold postings are recommended from their features.

- `content`: a user's profile is the confidence-weighted (optionally time-decayed) mean of the
  features of the items they interacted with; an item's score is the cosine between the profile and
  its L2-normalised features. Products stay sparse and users are scored in blocks.
- `hybrid`: a collaborative family's ranking and the content ranking fused by weighted reciprocal
  rank (`weight` on the collaborative side, chosen on validation). A posting nobody has touched is
  absent from the collaborative list, so it competes on its content rank alone.

Both need an `ItemSide` (the features of the training item index and which postings are closed);
they keep the features in their arrays, so a saved model needs nothing else to score. Closed
postings are never recommended, by any family: `new_model(..., items=)` hands the item side's
`closed` mask to `Recommender.exclude_items`, the mechanism every family shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recsys_assets.domain import storage
from recsys_assets.domain.families import (
    FAMILY_CLASSES,
    SCORE_BLOCK_CELLS,
    Recommender,
    binary,
    decayed,
    new_model,
    top_k_dense,
)
from recsys_assets.domain.item_features import align, features_from_bytes, l2_rows, positions
from recsys_assets.domain.items import days_since_epoch, open_mask
from recsys_assets.domain.layout import ItemFiles
from recsys_assets.domain.params import ContentParams, FamilyParams, HybridParams
from recsys_assets.domain.splitting import GLOBAL_CUT

# Reciprocal-rank fusion constant (Cormack et al. 2009): damps the difference between top ranks.
RRF_K = 60.0


@dataclass(frozen=True)
class ItemSide:
    """What content families know of the items of one training index.

    `features` has one L2-normalised row per item column (zero rows for items without features);
    `closed` is True for postings closed on or before the reference day (never recommended, by any
    family; False where the closing day is unknown).
    `posted` is each item's posting day (days since the epoch, NaN unknown), for freshness metrics, and
    `age` its age in days at the scoring day (NaN unknown), for the content families' recency prior.
    """

    features: sp.csr_matrix
    closed: np.ndarray
    posted: np.ndarray
    age: np.ndarray | None = None

    def recency(self, half_life_days: float | None) -> np.ndarray:
        """Each item's freshness weight 0.5^(age / half-life): 1 when off, unknown or not posted yet."""
        n = self.features.shape[0]
        if half_life_days is None or self.age is None:
            return np.ones(n, dtype=np.float32)
        age = np.nan_to_num(np.maximum(self.age, 0.0), nan=0.0)
        return np.power(0.5, age / half_life_days).astype(np.float32)


def item_side(
    features: sp.csr_matrix,
    feature_ids: pa.Array | pa.ChunkedArray,
    posted: np.ndarray,
    closed: np.ndarray,
    item_ids: pa.Array,
    reference_day: float,
    age_day: float | None = None,
) -> ItemSide:
    """The item side of training index `item_ids` at `reference_day` (days since the epoch).

    `posted`/`closed` are per feature row (days since the epoch, NaN unknown). A posting may be
    recommended unless it closed on or before the reference day; postings posted later are allowed,
    because serving scores them from their features the day they appear.
    """
    aligned = align(features, feature_ids, item_ids)
    rows = positions(item_ids, feature_ids)
    known = rows >= 0
    item_posted = np.full(len(item_ids), np.nan)
    item_closed = np.full(len(item_ids), np.nan)
    item_posted[known] = posted[rows[known]]
    item_closed[known] = closed[rows[known]]
    closed = ~open_mask(np.full(len(item_ids), np.nan), item_closed, reference_day)
    age = None if age_day is None else age_day - item_posted
    return ItemSide(features=aligned, closed=closed, posted=item_posted, age=age)


def _csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    return {
        f"{prefix}data": matrix.data,
        f"{prefix}indices": matrix.indices,
        f"{prefix}indptr": matrix.indptr,
        f"{prefix}shape": np.asarray(matrix.shape),
    }


def _csr_from(prefix: str, arrays: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    rows, columns = (int(n) for n in arrays[f"{prefix}shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]), shape=(rows, columns)
    )


class Content(Recommender):
    """Cosine between a user's feature profile and each item's features."""

    family = "content"
    params_type = ContentParams
    uses_items = True

    def __init__(self, params: FamilyParams, items: ItemSide | None = None, profiles: sp.csr_matrix | None = None):
        super().__init__(params)
        self.items = items
        self.profiles = profiles

    def profile(self, history: sp.csr_matrix) -> sp.csr_matrix:
        """L2-normalised profiles of users with `history` (confidences or ones) over the item columns."""
        assert self.items is not None, "content families need item features"
        return l2_rows(sp.csr_matrix(history.astype(np.float32) @ self.items.features))

    def fit(self, matrix, ages=None, callback=None):
        self.profiles = self.profile(decayed(matrix, ages, self.params.half_life_days))
        return self

    def user_profiles(self, users: np.ndarray, seen: sp.csr_matrix) -> sp.csr_matrix:
        """Stored profiles for training users; folded in from `seen` for the others."""
        users = np.asarray(users, dtype=np.int64)
        folded = self.profile(binary(seen))
        if self.profiles is None or not (users >= 0).any():
            return folded
        known = users >= 0
        pick = sp.csr_matrix(
            (np.ones(int(known.sum()), np.float32), (np.flatnonzero(known), users[known])),
            shape=(len(users), self.profiles.shape[0]),
        )
        keep = sp.diags((~known).astype(np.float32))
        return sp.csr_matrix(pick @ self.profiles + keep @ folded)

    def scores(self, users: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
        """Dense cosine scores of one block of users (excluded items are removed by `recommend`)."""
        assert self.items is not None
        scores = (self.user_profiles(users, seen) @ self.items.features.T).toarray().astype(np.float32)
        assert isinstance(self.params, ContentParams)
        # New postings draw the most interest: a recency prior (off by default, searched) favours them.
        scores *= self.items.recency(self.params.recency_half_life_days)[None, :]
        return scores

    def recommend(self, users, seen, k):
        n_items = seen.shape[1]
        block = max(1, SCORE_BLOCK_CELLS // max(n_items, 1))
        out = np.full((len(users), k), -1, dtype=np.int64)
        for start in range(0, len(users), block):
            rows = seen[start : start + block]
            out[start : start + block] = top_k_dense(
                self.scores(users[start : start + block], rows), rows, k, self.excluded
            )
        return out

    def arrays(self):
        assert self.items is not None and self.profiles is not None
        return {
            **_csr_arrays("features_", self.items.features),
            **_csr_arrays("profiles_", self.profiles),
            "posted": self.items.posted,
            "age": self.items.age if self.items.age is not None else np.full(len(self.items.posted), np.nan),
        }

    @classmethod
    def from_arrays(cls, params, arrays):
        posted = np.asarray(arrays["posted"])
        # What is closed travels as the model's excluded items (`load_model`), not in the item side.
        items = ItemSide(
            features=_csr_from("features_", arrays),
            closed=np.zeros(len(posted), dtype=bool),
            posted=posted,
            age=np.asarray(arrays["age"]),
        )
        return cls(params, items=items, profiles=_csr_from("profiles_", arrays))


def content_params(params: HybridParams) -> ContentParams:
    """The content side of a hybrid: its decay and recency prior."""
    return ContentParams(half_life_days=params.half_life_days, recency_half_life_days=params.recency_half_life_days)


class Hybrid(Recommender):
    """Weighted reciprocal-rank fusion of a collaborative family and the content family."""

    family = "hybrid"
    params_type = HybridParams
    uses_items = True

    def __init__(
        self,
        params: FamilyParams,
        items: ItemSide | None = None,
        collaborative: Recommender | None = None,
        content: Content | None = None,
        item_users: np.ndarray | None = None,
    ):
        super().__init__(params)
        assert isinstance(params, HybridParams)
        if params.collaborative in ("content", "hybrid"):
            raise ValueError(f"a hybrid blends a collaborative family, not {params.collaborative!r}")
        self.collaborative = collaborative or new_model(params.collaborative, params.collaborative_params)
        self.content = content or Content(content_params(params), items=items)
        self.folds_in = self.collaborative.folds_in  # pyright: ignore[reportAttributeAccessIssue]
        self.item_users = item_users
        # Columns the collaborative model knows: postings added later (serving) are content-only.
        self.collaborative_items = None if item_users is None else len(item_users)

    def exclude_items(self, mask: np.ndarray | None) -> Recommender:
        """Exclude `mask` from the fused lists and from both sides' candidate lists, so no depth is spent on them."""
        super().exclude_items(mask)
        self.content.exclude_items(self.excluded)
        width = self.collaborative_items
        self.collaborative.exclude_items(None if self.excluded is None or width is None else self.excluded[:width])
        return self

    def fit(self, matrix, ages=None, callback=None):
        self.collaborative.fit(matrix, ages, None if callback is None else lambda i, _m: callback(i, self))
        self.content.fit(matrix, ages)
        self.item_users = np.bincount(binary(matrix).indices, minlength=matrix.shape[1]).astype(np.int32)
        self.collaborative_items = matrix.shape[1]
        # The collaborative model now knows its width: give it its share of the excluded items.
        return self.exclude_items(self.excluded)

    def recommend(self, users, seen, k):
        assert isinstance(self.params, HybridParams) and self.content.items is not None
        users = np.asarray(users, dtype=np.int64)
        depth = max(self.params.depth, k)
        n_items = seen.shape[1]
        w = self.params.weight
        assert self.item_users is not None and self.collaborative_items is not None, "fit or load the model first"
        # Items the collaborative side cannot place are weighted on their content rank alone (fallback).
        content_weight = np.full(n_items, 1.0 - w, dtype=np.float32)
        content_weight[self.item_users < self.params.fallback_below] = self.params.fallback_weight
        out = np.full((len(users), k), -1, dtype=np.int64)
        block = max(1, SCORE_BLOCK_CELLS // max(n_items, 1))
        for start in range(0, len(users), block):
            ids, rows = users[start : start + block], seen[start : start + block]
            fused = np.zeros((len(ids), n_items), dtype=np.float32)
            collaborative = self.collaborative.recommend(ids, sp.csr_matrix(rows[:, : self.collaborative_items]), depth)
            r, position = np.nonzero(collaborative >= 0)
            np.add.at(fused, (r, collaborative[r, position]), np.float32(w) / (RRF_K + position + 1))
            content = self.content.recommend(ids, rows, depth)
            r, position = np.nonzero(content >= 0)
            columns = content[r, position]
            np.add.at(fused, (r, columns), content_weight[columns] / (RRF_K + position + 1))
            fused[fused <= 0] = -np.inf
            out[start : start + block] = top_k_dense(fused, rows, k, self.excluded)
        return out

    def arrays(self):
        collaborative = {f"collab_{name}": value for name, value in self.collaborative.arrays().items()}
        content = {f"content_{name}": value for name, value in self.content.arrays().items()}
        assert self.item_users is not None
        return collaborative | content | {"item_users": self.item_users[: self.collaborative_items]}

    @classmethod
    def from_arrays(cls, params, arrays):
        assert isinstance(params, HybridParams)
        collab_cls = FAMILY_CLASSES[params.collaborative]
        collaborative = collab_cls.from_arrays(
            collab_cls.params_type.model_validate(params.collaborative_params),
            {name.removeprefix("collab_"): value for name, value in arrays.items() if name.startswith("collab_")},
        )
        content = Content.from_arrays(
            content_params(params),
            {name.removeprefix("content_"): value for name, value in arrays.items() if name.startswith("content_")},
        )
        assert isinstance(content, Content)
        return cls(params, collaborative=collaborative, content=content, item_users=np.asarray(arrays["item_users"]))


FAMILY_CLASSES.update({Content.family: Content, Hybrid.family: Hybrid})


@dataclass(frozen=True)
class ItemSource:
    """The item_features asset's output: features per catalogue row, with each row's id and open window."""

    features: sp.csr_matrix
    item_ids: pa.Array
    posted: np.ndarray
    closed: np.ndarray

    @classmethod
    def load(cls, files: ItemFiles) -> ItemSource | None:
        """The features in `files`, or None when the catalogue was empty (no feature matrix written)."""
        if not storage.exists(files.transformer):
            return None
        rows = storage.table_from_bytes(storage.read_bytes(files.items))
        return cls(
            features=features_from_bytes(storage.read_bytes(files.features)),
            item_ids=rows["item_id"].combine_chunks(),
            posted=days_since_epoch(rows["posted_date"]),
            closed=days_since_epoch(rows["closed_date"]),
        )

    def side(self, item_ids: pa.Array, reference_day: float | None, age_day: float | None = None) -> ItemSide:
        """The item side of training index `item_ids` at `reference_day`; with none, nothing counts as closed.

        Ages (for the recency prior) are taken at `age_day`, by default the reference day.
        """
        day = -np.inf if reference_day is None else reference_day
        ages_at = reference_day if age_day is None else age_day
        return item_side(self.features, self.item_ids, self.posted, self.closed, item_ids, day, ages_at)


def with_new_items(model: Recommender, features: sp.csr_matrix, posted: np.ndarray) -> Recommender:
    """`model` able to recommend postings it was not trained on, given their features (appended as new columns).

    The new postings are recommendable; the model's excluded (closed) items stay excluded.

    Raises:
        ValueError: the model's family does not score items from features.
    """
    if isinstance(model, Hybrid):
        content = with_new_items(model.content, features, posted)
        assert isinstance(content, Content) and model.item_users is not None
        extended = Hybrid(
            model.params,
            collaborative=model.collaborative,
            content=content,
            item_users=np.concatenate([model.item_users, np.zeros(features.shape[0], np.int32)]),
        )
        extended.collaborative_items = model.collaborative_items
        return extended.exclude_items(content.excluded)
    if not isinstance(model, Content) or model.items is None:
        raise ValueError(f"a {model.family} model cannot score new postings: only content and hybrid models can")
    items = model.items
    side = ItemSide(
        features=sp.csr_matrix(sp.vstack([items.features, features.astype(np.float32)])),
        closed=np.concatenate([items.closed, np.zeros(features.shape[0], dtype=bool)]),
        posted=np.concatenate([items.posted, posted.astype(np.float64)]),
        # A posting newer than the model's scoring day is as fresh as can be (age 0).
        age=None if items.age is None else np.concatenate([items.age, np.zeros(features.shape[0])]),
    )
    n_old = len(items.posted)
    excluded = np.zeros(n_old + features.shape[0], dtype=bool)
    if model.excluded is not None:
        excluded[:n_old] = model.excluded
    return Content(model.params, items=side, profiles=model.profiles).exclude_items(excluded)


def reference_days(protocol: str, end_day: float, cut_days: int) -> tuple[float | None, float | None]:
    """The days at which postings must be open: (searching on fit, scoring the holdout after train).

    Every family excludes the postings closed on or before that day (`ItemSide.closed`). The global
    cut recommends at its cut days. The per-user holdout has no single cut: each user's held-out
    items are their own latest, at a different time per user, so a posting closed before one user's
    holdout may be open at another's. One mask for all users would either hide postings some users
    really applied to or rely on closings after the training data; so nothing counts as closed
    there (None), and that protocol compares models on the same, unfiltered catalogue. The served
    refit excludes what is closed at the end of the window, whatever the protocol.
    """
    if protocol == GLOBAL_CUT:
        return end_day - 2 * cut_days, end_day - cut_days
    return None, None


def new_item_share(recommendations: np.ndarray, posted: np.ndarray, reference_day: float, days: int) -> float:
    """Share of filled slots in `recommendations` (users x k, -1 empty) given to items under `days` days old.

    An item's age is `reference_day - posted`; items without a known posting day count as old.
    """
    filled = recommendations[recommendations >= 0]
    if len(filled) == 0:
        return 0.0
    with np.errstate(invalid="ignore"):
        young = (reference_day - posted[filled]) < days
    return float(np.mean(young))
