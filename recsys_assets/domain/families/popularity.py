"""Popularity and recent popularity: every user gets the same order of items, minus what they saw."""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_assets.domain.families.base import (
    HALF_LIVES,
    SCORE_BLOCK_CELLS,
    DenseScorer,
    FamilyParams,
    Space,
    Span,
    ages_aligned,
    binary,
    decayed,
)


class PopularityParams(FamilyParams):
    """Items by how many users interacted with them."""

    @classmethod
    def first_trials(cls, best_half_life: float | str) -> list[dict[str, Any]]:
        """Every decay: popularity costs almost nothing, so it maps out which decay suits this data.

        The families searched after it start from the best of these (`FamilyParams.first_trials`);
        popularity's decay is about item trends, which is only a hint for a model of users.
        """
        return [{"half_life_days": half_life} for half_life in HALF_LIVES]


class RecentPopularityParams(FamilyParams):
    """Popularity over the last `days` days."""

    days: float = Field(default=7.0, gt=0, description="Only interactions of the last this many days count.")

    space: ClassVar[Space] = FamilyParams.space | {"days": Span(1, 30, log=True, whole=True)}
    first_trial: ClassVar[dict[str, Any]] = {"days": 7}


Counted = TypeVar("Counted", PopularityParams, RecentPopularityParams)


class ItemCounts(DenseScorer[Counted]):
    """Scores items by a count over their users, the same for everyone (decayed by age when a half-life is set)."""

    # Every item's score, once fitted or restored.
    item_scores: np.ndarray | None = None

    def _counted(self, matrix: sp.csr_matrix, ages: sp.csr_matrix | None) -> sp.csr_matrix:
        return decayed(binary(matrix), ages, self.params.half_life_days)

    def fit(self, matrix, ages=None, callback=None):
        self.item_scores = np.asarray(self._counted(matrix, ages).sum(axis=0), dtype=np.float32).ravel()
        return self

    def scores(self, users, seen):
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

    def restore(self, arrays):
        self.item_scores = np.asarray(arrays["item_scores"])
        return self


class Popularity(ItemCounts[PopularityParams]):
    """Items by how many users interacted with them (decayed by age when a half-life is set)."""

    family = "popularity"
    params_type = PopularityParams


class RecentPopularity(ItemCounts[RecentPopularityParams]):
    """Popularity over the last `days` days before the training data's end."""

    family = "recent_popularity"
    params_type = RecentPopularityParams

    def _counted(self, matrix, ages):
        if ages is None:
            raise ValueError("recent popularity needs the interactions' ages")
        counted = super()._counted(matrix, ages)
        recent = ages_aligned(matrix, ages) <= self.params.days
        return sp.csr_matrix((counted.data * recent, counted.indices, counted.indptr), shape=counted.shape)
