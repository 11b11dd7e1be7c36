"""The interface every model family implements, and what the families share.

Every family is fitted on a users x items confidence matrix (optionally with the age in days of
each interaction, for time decay and recent popularity) and recommends from a *binary* history:
the seen items of each user, one row per requested user. That is the scoring contract a bundle
is served with (a user id plus the ids of the items they saw), so the offline evaluation and the
serving API rank with exactly the same inputs. Models are saved as `.npz` arrays (no pickle);
their parameters travel as JSON in the training report and the manifest.

A family is a `Recommender[P]` subclass with its parameter class `P` (a `FamilyParams`, which also
carries the family's search space and first trial) beside it in its own module; `registry.py` is
the one place that lists them.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

import numpy as np
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from recsys_assets.domain.families.topk import top_k_dense
from recsys_assets.domain.item_side import ItemSide

# Optuna is imported by the search only: serving and the evaluation load families without it.
if TYPE_CHECKING:
    import optuna

    from recsys_assets.domain.params import SelectionParams

# Users are scored in blocks so a dense users x items score matrix stays a few hundred MB at most.
SCORE_BLOCK_CELLS = 20_000_000
# The saved model array holding `Recommender.excluded`.
EXCLUDED_ARRAY = "excluded_items"
# Decay half-lives the search draws, as fractions of the span of the data fitted on (the search turns
# them into days): 28 days give 2.8-84 days, a 215-day MovieLens history 21-645 days. "off" is a
# real candidate: decay only wins when it beats no decay.
HALF_LIVES = ("off", 0.1, 0.25, 0.5, 1.0, 3.0)


@dataclass(frozen=True)
class Choice:
    """A categorical search dimension; the value "off" stands for None (a switched-off option)."""

    values: tuple[Any, ...]

    def draw(self, trial: optuna.Trial, name: str) -> Any:
        value = trial.suggest_categorical(name, self.values)
        return None if value == "off" else value


@dataclass(frozen=True)
class Span:
    """A numeric search dimension from `low` to `high`, log-scaled when `log`; whole numbers when `whole`."""

    low: float
    high: float
    log: bool = False
    whole: bool = False
    # The type of the parameter it feeds (whole numbers can feed a float parameter).
    of: type = float

    def draw(self, trial: optuna.Trial, name: str) -> Any:
        if self.whole:
            return self.of(trial.suggest_int(name, int(self.low), int(self.high), log=self.log))
        return trial.suggest_float(name, self.low, self.high, log=self.log)


# A family's search space: each searched parameter and its dimension, drawn in this order.
Space = dict[str, Choice | Span]


class FamilyParams(BaseModel):
    """Parameters every family has, the time decay of interaction confidence; each family adds its own.

    A family's parameter class also declares how the search explores it: `space` maps each searched
    parameter to its dimension (drawn in that order), and `first_trial` is the sound default tried
    first, so that a family that gets only one or two trials at scale is still judged on a reasonable point.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    half_life_days: float | None = Field(
        default=None, gt=0, description="Confidence halves every this many days of age; None switches decay off."
    )

    space: ClassVar[Space] = {"half_life_days": Choice(HALF_LIVES)}
    first_trial: ClassVar[dict[str, Any]] = {}

    @classmethod
    def suggest(
        cls, trial: optuna.Trial, settings: SelectionParams, blended: tuple[str, dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """One point of the family's search space, as parameters.

        `blended` is the family and parameters of the model a blending family builds on (see
        `Recommender.blends`); the other families ignore it.
        """
        return {name: dimension.draw(trial, name) for name, dimension in cls.space.items()}

    @classmethod
    def first_trials(cls, best_half_life: float | str) -> list[dict[str, Any]]:
        """Points tried before the sampler's own: `first_trial` with the decay that suited the families
        searched so far (a `HALF_LIVES` value) and without decay."""
        return [{**cls.first_trial, "half_life_days": half_life} for half_life in (best_half_life, "off")]


P = TypeVar("P", bound=FamilyParams)
# Called after each iteration of an iterative model with (iteration, model): lets a search prune it.
IterationCallback = Callable[[int, "Recommender[Any]"], None]
# Builds an unfitted model of another family by name: how a family made of others (the hybrid) gets
# its parts without knowing every family (the registry passes it to `Recommender.new`).
MakeModel = Callable[[str, Mapping[str, Any]], "Recommender[Any]"]


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


class Recommender(ABC, Generic[P]):
    """A fitted (or loaded) model of one family, with parameters `P`."""

    family: ClassVar[str]
    params_type: ClassVar[type[FamilyParams]]
    # Whether a user the model was not trained on can be scored from their history.
    folds_in: ClassVar[bool] = True
    # Whether the family takes item features (`new_model(..., items=)`); the others ignore them.
    uses_items: ClassVar[bool] = False
    # Whether the family blends the best searched family that takes no item features (the search
    # tries it after all of them and hands it that trial as `blended`).
    blends: ClassVar[bool] = False

    # Item columns never recommended (True: excluded), e.g. postings closed at the scoring day; None: none.
    excluded: np.ndarray | None = None

    def __init__(self, params: P) -> None:
        self.params = params

    @classmethod
    def new(cls, params: P, items: ItemSide | None, make: MakeModel) -> Self:
        """An unfitted model; `items` for the families that use item features, `make` for those made of others."""
        return cls(params)

    @classmethod
    def skip_reason(cls, n_items: int, settings: SelectionParams) -> str | None:
        """Why the search cannot try this family on `n_items` items (e.g. memory), or None."""
        return None

    @property
    def iterations(self) -> int:
        """Iterations `fit` reports through its callback (0: the family is not iterative)."""
        return 0

    def exclude_items(self, mask: np.ndarray | None) -> Self:
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
    ) -> Self:
        """Fit on a users x items confidence matrix; `ages` (days, same entries) drives time decay."""

    @abstractmethod
    def recommend(self, users: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
        """Top-k unseen item indices per user, -1 padded; `seen` has one binary row per entry of `users`.

        `users` are training row indices, or -1 for a user the model was not trained on.
        """

    @abstractmethod
    def arrays(self) -> dict[str, np.ndarray]:
        """What `restore` needs besides the parameters."""

    @abstractmethod
    def restore(self, arrays: Mapping[str, np.ndarray]) -> Self:
        """The fitted state saved by `arrays`, put back without fitting."""

    def with_new_items(self, features: sp.csr_matrix, posted: np.ndarray) -> Recommender[Any]:
        """This model able to recommend postings it was not trained on, from their features (new columns).

        Raises:
            ValueError: the family does not score items from their features.
        """
        raise ValueError(f"a {self.family} model cannot score new postings: it does not use item features")

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        excluded = {} if self.excluded is None else {EXCLUDED_ARRAY: self.excluded}
        np.savez(buffer, allow_pickle=False, **self.arrays(), **excluded)
        return buffer.getvalue()


class DenseScorer(Recommender[P]):
    """A family whose scores for a block of users are a dense matrix computed from their history."""

    @abstractmethod
    def scores(self, users: np.ndarray, seen: sp.csr_matrix) -> np.ndarray:
        """Scores (users x items) of one block of users from their binary history."""

    def recommend(self, users: np.ndarray, seen: sp.csr_matrix, k: int) -> np.ndarray:
        n_items = seen.shape[1]
        block = max(1, SCORE_BLOCK_CELLS // max(n_items, 1))
        out = np.full((len(users), k), -1, dtype=np.int64)
        for start in range(0, len(users), block):
            rows = seen[start : start + block]
            out[start : start + block] = top_k_dense(
                self.scores(users[start : start + block], rows), rows, k, self.excluded
            )
        return out


def rank_users(
    model: Recommender[Any], seen: sp.csr_matrix, k: int, known_users: bool = True
) -> Callable[[np.ndarray], np.ndarray]:
    """The `Ranker` the metrics score: `model`'s top-k for training rows `users`, from their binary history."""
    history = binary(seen)

    def rank(users: np.ndarray) -> np.ndarray:
        ids = users if known_users else np.full(len(users), -1, dtype=np.int64)
        return model.recommend(ids, history[users], k)

    return rank
