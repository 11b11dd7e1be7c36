"""Item-item nearest neighbours (implicit's BM25 or cosine similarity), scored as sparse products."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar, Literal, cast

import numpy as np
import scipy.sparse as sp
from implicit.nearest_neighbours import BM25Recommender, CosineRecommender, ItemItemRecommender
from implicit.utils import ParameterWarning
from pydantic import Field
from threadpoolctl import threadpool_limits

from recsys_assets.domain.families.base import (
    SCORE_BLOCK_CELLS,
    Choice,
    FamilyParams,
    Recommender,
    Space,
    Span,
    decayed,
)
from recsys_assets.domain.families.topk import top_k_sparse


class ItemKNNParams(FamilyParams):
    """The similarity and how many neighbours each item keeps."""

    similarity: Literal["bm25", "cosine"] = "bm25"
    neighbours: int = Field(default=100, ge=1)

    space: ClassVar[Space] = FamilyParams.space | {
        "similarity": Choice(("bm25", "cosine")),
        "neighbours": Span(20, 400, log=True, whole=True, of=int),
    }
    first_trial: ClassVar[dict[str, Any]] = {"similarity": "bm25", "neighbours": 100}


class ItemKNN(Recommender[ItemKNNParams]):
    """Item-item nearest neighbours (implicit), BM25- or cosine-weighted."""

    family = "item_knn"
    params_type = ItemKNNParams

    # Each item's neighbours and their weights (items x items, sparse), once fitted or restored.
    similarity: sp.csr_matrix | None = None

    def fit(self, matrix, ages=None, callback=None):
        kind = BM25Recommender if self.params.similarity == "bm25" else CosineRecommender
        model: ItemItemRecommender = kind(K=self.params.neighbours)
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # implicit's BM25 fit hands its own COO intermediate to a CSR-only kernel and warns about itself.
            warnings.simplefilter("ignore", ParameterWarning)
            model.fit(decayed(matrix, ages, self.params.half_life_days), show_progress=False)
        # implicit leaves `similarity` None until `fit`, which has just run.
        self.similarity = sp.csr_matrix(cast(sp.csr_matrix, model.similarity))
        return self

    def recommend(self, users, seen, k):
        """Top-k of `seen @ similarity` outside `seen`, best first, ties by item index; -1 padded.

        Item-kNN scores from the history alone, so every user is "folded in". This is implicit's
        scoring done as one sparse product per block of users instead of a Python call per user.
        """
        assert self.similarity is not None, "fit or load the model first"
        similarity = sp.csr_matrix(self.similarity, dtype=np.float64)
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
        assert self.similarity is not None
        return {
            "data": self.similarity.data,
            "indices": self.similarity.indices,
            "indptr": self.similarity.indptr,
            "shape": np.asarray(self.similarity.shape),
        }

    def restore(self, arrays):
        rows, columns = (int(n) for n in arrays["shape"])
        self.similarity = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(rows, columns))
        return self
