"""Hybrid family: a collaborative family's ranking and the content ranking fused by weighted reciprocal rank.

`weight` is on the collaborative side, chosen on validation. A posting nobody has touched is absent
from the collaborative list, so it competes on its content rank alone (at `fallback_weight`). The
hybrid is given its collaborative part (`new` asks the registry for it by name), so it knows no
other family's module but the content family's.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recsys_assets.domain.families.base import SCORE_BLOCK_CELLS, Choice, FamilyParams, Recommender, Space, Span, binary
from recsys_assets.domain.families.content import Content, ContentParams
from recsys_assets.domain.families.topk import top_k_dense

# Reciprocal-rank fusion constant (Cormack et al. 2009): damps the difference between top ranks.
RRF_K = 60.0


class HybridParams(FamilyParams):
    """A collaborative family's ranking fused with the content ranking, `weight` on the collaborative side."""

    collaborative: str = Field(default="item_knn", description="The collaborative family blended in.")
    recency_half_life_days: float | None = Field(
        default=None, gt=0, description="The content side's recency prior (see ContentParams)."
    )
    collaborative_params: dict[str, Any] = Field(default_factory=dict, description="Its parameters.")
    weight: float = Field(default=0.5, ge=0, le=1, description="1 = collaborative only, 0 = content only.")
    depth: int = Field(default=100, ge=1, description="Candidates taken from each ranking before fusing.")
    fallback_below: int = Field(
        default=1,
        ge=0,
        description="Items with fewer training users than this are ranked by content alone, at `fallback_weight` "
        "(a collaborative model cannot place them); 0 switches the fallback off.",
    )
    fallback_weight: float = Field(
        default=1.0, ge=0, le=1, description="Weight of the content rank of those items (instead of 1 - weight)."
    )

    # Mostly the collaborative ranking, with untouched postings placed by content: the best validation
    # point measured on the synthetic job board, where it also gives new postings slots (benchmarks/README.md).
    first_trial: ClassVar[dict[str, Any]] = {
        "recency_half_life_days": 7.0,
        "weight": 0.9,
        "fallback_below": 1,
        "fallback_weight": 0.9,
    }

    space: ClassVar[Space] = ContentParams.space | {
        "weight": Span(0.0, 1.0),
        "fallback_below": Choice((0, 1, 3)),
        "fallback_weight": Span(0.0, 1.0),
    }

    @classmethod
    def suggest(cls, trial, settings, blended=None):
        """The content side's decay and recency prior, the fusion weights, and `blended` as the collaborative part."""
        if blended is None:
            raise ValueError("a hybrid is searched on a collaborative trial to blend with")
        family, family_params = blended
        return super().suggest(trial, settings) | {"collaborative": family, "collaborative_params": family_params}


def content_params(params: HybridParams) -> ContentParams:
    """The content side of a hybrid: its decay and recency prior."""
    return ContentParams(half_life_days=params.half_life_days, recency_half_life_days=params.recency_half_life_days)


class Hybrid(Recommender[HybridParams]):
    """Weighted reciprocal-rank fusion of a collaborative family and the content family."""

    family = "hybrid"
    params_type = HybridParams
    uses_items = True
    blends = True

    def __init__(
        self,
        params: HybridParams,
        collaborative: Recommender[Any],
        content: Content,
        item_users: np.ndarray | None = None,
    ) -> None:
        super().__init__(params)
        self.collaborative = collaborative
        self.content = content
        self.folds_in = collaborative.folds_in  # pyright: ignore[reportAttributeAccessIssue]
        self.item_users = item_users
        # Columns the collaborative model knows: postings added later (serving) are content-only.
        self.collaborative_items = None if item_users is None else len(item_users)

    @classmethod
    def new(cls, params, items, make):
        collaborative = make(params.collaborative, params.collaborative_params)
        if collaborative.uses_items:
            raise ValueError(f"a hybrid blends a collaborative family, not {params.collaborative!r}")
        return cls(params, collaborative, Content(content_params(params), items=items))

    def exclude_items(self, mask):
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
        assert self.content.items is not None
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

    def restore(self, arrays):
        self.collaborative.restore(
            {name.removeprefix("collab_"): value for name, value in arrays.items() if name.startswith("collab_")}
        )
        self.content.restore(
            {name.removeprefix("content_"): value for name, value in arrays.items() if name.startswith("content_")}
        )
        self.item_users = np.asarray(arrays["item_users"])
        self.collaborative_items = len(self.item_users)
        return self

    def with_new_items(self, features, posted):
        """The content side takes the new postings; the collaborative side cannot place them (no users yet)."""
        content = self.content.with_new_items(features, posted)
        assert self.item_users is not None, "fit or load the model first"
        extended = Hybrid(
            self.params,
            self.collaborative,
            content,
            item_users=np.concatenate([self.item_users, np.zeros(features.shape[0], np.int32)]),
        )
        extended.collaborative_items = self.collaborative_items
        return extended.exclude_items(content.excluded)
