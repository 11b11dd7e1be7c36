"""Content-based family: cold postings are recommended from their features.

A user's profile is the confidence-weighted (optionally time-decayed) mean of the features of the
items they interacted with; an item's score is the cosine between the profile and its
L2-normalised features, optionally weighted by a recency prior on the posting's age. Products stay
sparse and users are scored in blocks. The model keeps the features in its arrays, so a saved model
needs nothing else to score, and postings that appear later are scored from their features
(`with_new_items`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_assets.domain.families.base import Choice, DenseScorer, FamilyParams, Space, binary, decayed
from recsys_assets.domain.item_features import l2_rows
from recsys_assets.domain.item_side import ItemSide

# The recency prior on a posting's age ("off": no prior).
RECENCY_HALF_LIVES = ("off", 3.0, 7.0, 14.0, 30.0)


class ContentParams(FamilyParams):
    """Content-based: a user's profile is the confidence-weighted mean of their items' features."""

    recency_half_life_days: float | None = Field(
        default=None, gt=0, description="Scores halve every this many days of a posting's age; None: no prior."
    )

    space: ClassVar[Space] = FamilyParams.space | {"recency_half_life_days": Choice(RECENCY_HALF_LIVES)}
    first_trial: ClassVar[dict[str, Any]] = {"recency_half_life_days": 7.0}


def csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A sparse matrix as named arrays (`<prefix>data`, ...), for a model's `.npz`."""
    return {
        f"{prefix}data": matrix.data,
        f"{prefix}indices": matrix.indices,
        f"{prefix}indptr": matrix.indptr,
        f"{prefix}shape": np.asarray(matrix.shape),
    }


def csr_from(prefix: str, arrays: Mapping[str, np.ndarray]) -> sp.csr_matrix:
    rows, columns = (int(n) for n in arrays[f"{prefix}shape"])
    return sp.csr_matrix(
        (arrays[f"{prefix}data"], arrays[f"{prefix}indices"], arrays[f"{prefix}indptr"]), shape=(rows, columns)
    )


class Content(DenseScorer[ContentParams]):
    """Cosine between a user's feature profile and each item's features."""

    family = "content"
    params_type = ContentParams
    uses_items = True

    def __init__(
        self, params: ContentParams, items: ItemSide | None = None, profiles: sp.csr_matrix | None = None
    ) -> None:
        super().__init__(params)
        self.items = items
        self.profiles = profiles

    @classmethod
    def new(cls, params, items, make):
        return cls(params, items=items)

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

    def scores(self, users, seen):
        """Dense cosine scores of one block of users (excluded items are removed by `recommend`)."""
        assert self.items is not None
        scores = (self.user_profiles(users, seen) @ self.items.features.T).toarray().astype(np.float32)
        # New postings draw the most interest: a recency prior (off by default, searched) favours them.
        scores *= self.items.recency(self.params.recency_half_life_days)[None, :]
        return scores

    def arrays(self):
        assert self.items is not None and self.profiles is not None
        return {
            **csr_arrays("features_", self.items.features),
            **csr_arrays("profiles_", self.profiles),
            "posted": self.items.posted,
            "age": self.items.age if self.items.age is not None else np.full(len(self.items.posted), np.nan),
        }

    def restore(self, arrays):
        posted = np.asarray(arrays["posted"])
        # What is closed travels as the model's excluded items (`load_model`), not in the item side.
        self.items = ItemSide(
            features=csr_from("features_", arrays),
            closed=np.zeros(len(posted), dtype=bool),
            posted=posted,
            age=np.asarray(arrays["age"]),
        )
        self.profiles = csr_from("profiles_", arrays)
        return self

    def with_new_items(self, features: sp.csr_matrix, posted: np.ndarray) -> Content:
        """Postings appended as new columns, recommendable from their features; closed items stay excluded."""
        if self.items is None:
            raise ValueError("a content model without item features cannot score new postings")
        items = self.items
        side = ItemSide(
            features=sp.csr_matrix(sp.vstack([items.features, features.astype(np.float32)])),
            closed=np.concatenate([items.closed, np.zeros(features.shape[0], dtype=bool)]),
            posted=np.concatenate([items.posted, posted.astype(np.float64)]),
            # A posting newer than the model's scoring day is as fresh as can be (age 0).
            age=None if items.age is None else np.concatenate([items.age, np.zeros(features.shape[0])]),
        )
        n_old = len(items.posted)
        excluded = np.zeros(n_old + features.shape[0], dtype=bool)
        if self.excluded is not None:
            excluded[:n_old] = self.excluded
        return Content(self.params, items=side, profiles=self.profiles).exclude_items(excluded)
