"""Parameter sets, each declared once: the Dagster run config of an asset inherits from these.

They are plain pydantic models so the domain code (and the training entrypoint in another
process) uses them without Dagster; `dg.Config` subclasses add nothing but the asset's own knobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product

from pydantic import BaseModel, ConfigDict, Field

from recsys_assets.domain.events import EVENT_TYPE_WEIGHTS


class SplitParams(BaseModel):
    """How a window of events becomes weighted matrices and a per-user time split."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_type_weights: dict[str, float] = Field(
        default_factory=lambda: dict(EVENT_TYPE_WEIGHTS), description="Confidence multiplier per event type."
    )
    default_event_weight: float = Field(default=1.0, description="Multiplier for event types not listed.")
    min_user_items: int = Field(default=3, ge=2, description="Users with fewer distinct items are dropped.")
    min_item_users: int = Field(default=3, ge=1, description="Items with fewer distinct users are dropped.")
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of each user's most recent items held out."
    )
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of the remaining items used to tune hyperparameters."
    )


class ALSFixedParams(BaseModel):
    """ALS settings that are not searched."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iterations: int = Field(default=15, ge=1, description="ALS sweeps over users and items.")
    bm25_k1: float = Field(default=100.0, ge=0, description="BM25 K1 for confidence weighting; 0 disables it.")
    bm25_b: float = Field(default=0.8, ge=0, le=1, description="BM25 length normalisation B (0 = none, 1 = full).")
    random_state: int = Field(default=42, description="Seed of the factor initialisation.")
    num_threads: int = Field(
        default=0, ge=0, description="implicit's worker threads (0 = all cores); BLAS stays at one thread."
    )


class ALSParams(ALSFixedParams):
    """One complete set of ALS hyperparameters: what a model is trained with and a bundle records."""

    factors: int = Field(default=64, ge=1, description="Latent factors.")
    regularization: float = Field(default=0.1, ge=0, description="L2 regularisation.")
    alpha: float = Field(default=1.0, gt=0, description="Confidence scaling (applied inside implicit's fit).")


class ALSSearchSpace(ALSFixedParams):
    """The ALS grid searched on the validation split, plus the settings every candidate shares."""

    factors: list[int] = Field(default=[16, 32, 64], min_length=1, description="Latent factor counts to try.")
    regularization: list[float] = Field(
        default=[0.1, 1.0], min_length=1, description="L2 regularisation values to try."
    )
    alpha: list[float] = Field(
        default=[1.0], min_length=1, description="Confidence scaling values to try (applied inside fit)."
    )
    validation_k: int = Field(default=10, ge=1, description="Cut-off of the validation NDCG that picks the candidate.")

    def candidates(self) -> Iterator[ALSParams]:
        """Every grid point, in a fixed order."""
        fixed = ALSFixedParams.model_validate(self.model_dump(include=set(ALSFixedParams.model_fields)))
        for factors, regularization, alpha in product(self.factors, self.regularization, self.alpha):
            yield ALSParams(**fixed.model_dump(), factors=factors, regularization=regularization, alpha=alpha)
