"""Matrix factorisation with implicit: ALS (folds new users in) and BPR (cannot)."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, TypeVar

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.cpu.bpr import BayesianPersonalizedRanking
from implicit.nearest_neighbours import bm25_weight
from pydantic import Field
from threadpoolctl import threadpool_limits

from recsys_assets.domain.families.base import Choice, FamilyParams, Recommender, Space, Span, decayed
from recsys_assets.domain.families.topk import top_k_from_implicit


class FactorParams(FamilyParams):
    """What the search gives every implicit factor model besides its space: the search's seed and threads."""

    @classmethod
    def suggest(cls, trial, settings, blended=None):
        return super().suggest(trial, settings) | {"random_state": settings.seed, "num_threads": settings.num_threads}


class ALSParams(FactorParams):
    """implicit's ALS arguments, and the BM25 weighting of the confidences it is fitted on."""

    factors: int = Field(default=64, ge=1)
    regularization: float = Field(default=0.1, ge=0)
    alpha: float = Field(default=1.0, gt=0)
    iterations: int = Field(default=15, ge=1)
    bm25_k1: float = Field(default=100.0, ge=0, description="BM25 K1 for confidence weighting; 0 disables it.")
    bm25_b: float = Field(default=0.8, ge=0, le=1)
    random_state: int = 42
    num_threads: int = Field(default=0, ge=0)

    space: ClassVar[Space] = FamilyParams.space | {
        # 128 factors costs ~4x 64 at scale and never won a measured search here.
        "factors": Choice((16, 32, 64)),
        "regularization": Span(1e-3, 10.0, log=True),
        "alpha": Span(0.1, 50.0, log=True),
        # Iterations are the cost: a cheap, nearly converged fit is often as good at scale.
        "iterations": Span(5, 20, whole=True, of=int),
    }
    first_trial: ClassVar[dict[str, Any]] = {"factors": 32, "regularization": 0.1, "alpha": 1.0, "iterations": 8}


class BPRParams(FactorParams):
    """implicit's BPR arguments."""

    factors: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    regularization: float = Field(default=0.01, ge=0)
    iterations: int = Field(default=100, ge=1)
    random_state: int = 42
    num_threads: int = Field(default=0, ge=0)

    space: ClassVar[Space] = FamilyParams.space | {
        "factors": Choice((16, 32, 64, 128)),
        "learning_rate": Span(1e-3, 0.1, log=True),
        "regularization": Span(1e-4, 0.1, log=True),
    }
    first_trial: ClassVar[dict[str, Any]] = {"factors": 32, "learning_rate": 0.01, "regularization": 0.01}


Factored = TypeVar("Factored", ALSParams, BPRParams)


class FactorFamily(Recommender[Factored]):
    """Matrix factorisation (implicit ALS or BPR): stored user and item factors, ranked by implicit."""

    model: AlternatingLeastSquares | BayesianPersonalizedRanking | None = None

    @abstractmethod
    def _new(self) -> AlternatingLeastSquares | BayesianPersonalizedRanking:
        """The unfitted implicit model with this model's parameters."""

    @property
    def iterations(self) -> int:
        return self.params.iterations

    def _fit(self, confidences: sp.csr_matrix, callback) -> None:
        model = self.model = self._new()
        hook = None if callback is None else (lambda iteration, *_progress: callback(iteration, self))
        # BLAS threads inside implicit's own threads oversubscribe the cores and slow it down badly.
        with threadpool_limits(1, "blas"):
            model.fit(confidences, show_progress=False, callback=hook)

    def _top_k(self, users: np.ndarray, seen: sp.csr_matrix, k: int, recalculate: bool) -> np.ndarray:
        assert self.model is not None, "fit or load the model first"
        return top_k_from_implicit(self.model, users, seen, k, recalculate_user=recalculate, excluded=self.excluded)

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
            "user_factors": np.asarray(self.model.user_factors),
            "item_factors": np.asarray(self.model.item_factors),
        }

    def restore(self, arrays):
        model = self.model = self._new()
        model.user_factors = np.asarray(arrays["user_factors"])
        model.item_factors = np.asarray(arrays["item_factors"])
        return self


class ALS(FactorFamily[ALSParams]):
    """Implicit ALS on BM25-weighted (and optionally decayed) confidence; folds users in by its closed form."""

    family = "als"
    params_type = ALSParams

    def _new(self) -> AlternatingLeastSquares:
        # Built under a single-threaded BLAS: implicit warns, rightly, about anything else.
        with threadpool_limits(1, "blas"):
            # Decay and BM25 weighting shape the confidences before `fit`; the rest are implicit's own arguments.
            return AlternatingLeastSquares(**self.params.model_dump(exclude={"half_life_days", "bm25_k1", "bm25_b"}))

    def fit(self, matrix, ages=None, callback=None):
        conf = decayed(matrix, ages, self.params.half_life_days)
        if self.params.bm25_k1 > 0:
            # implicit annotates K1 as an int, but BM25's K1 is a real number.
            conf = sp.csr_matrix(bm25_weight(conf, K1=self.params.bm25_k1, B=self.params.bm25_b)).astype(np.float32)  # pyright: ignore[reportArgumentType]
        self._fit(conf, callback)
        assert self.model is not None
        if not (np.isfinite(self.model.user_factors).all() and np.isfinite(self.model.item_factors).all()):
            raise ValueError(
                "ALS diverged: the fitted factors are not finite; check the input weights for absurd values"
            )
        return self


class BPR(FactorFamily[BPRParams]):
    """Implicit BPR: a cheap pairwise-ranking factor model. It cannot fold unknown users in."""

    family = "bpr"
    params_type = BPRParams
    folds_in = False

    def _new(self) -> BayesianPersonalizedRanking:
        # Decay shapes the confidences before `fit`; the rest are implicit's own arguments.
        return BayesianPersonalizedRanking(**self.params.model_dump(exclude={"half_life_days"}))

    def fit(self, matrix, ages=None, callback=None):
        self._fit(decayed(matrix, ages, self.params.half_life_days), callback)
        return self
