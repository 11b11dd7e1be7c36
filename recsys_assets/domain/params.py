"""Parameter sets, each declared once: the Dagster run config of an asset inherits from these.

They are plain pydantic models so the domain code (and the training entrypoint in another
process) uses them without Dagster; `dg.Config` subclasses add nothing but the asset's own knobs.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

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
    cut_days: int = Field(
        default=7,
        ge=1,
        description="Global time cut protocol: the last this many days are the holdout, the days before them "
        "the validation split, everything earlier trains.",
    )


class FamilyParams(BaseModel):
    """Parameters every family has: the time decay of interaction confidence (each family adds its own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    half_life_days: float | None = Field(
        default=None, gt=0, description="Confidence halves every this many days of age; None switches decay off."
    )


class PopularityParams(FamilyParams):
    pass


class RecentPopularityParams(FamilyParams):
    days: float = Field(default=7.0, gt=0, description="Only interactions of the last this many days count.")


class ItemKNNParams(FamilyParams):
    similarity: Literal["bm25", "cosine"] = "bm25"
    neighbours: int = Field(default=100, ge=1)


class EASEParams(FamilyParams):
    regularization: float = Field(default=200.0, gt=0, description="λ added to the Gram matrix's diagonal.")


class ALSParams(FamilyParams):
    factors: int = Field(default=64, ge=1)
    regularization: float = Field(default=0.1, ge=0)
    alpha: float = Field(default=1.0, gt=0)
    iterations: int = Field(default=15, ge=1)
    bm25_k1: float = Field(default=100.0, ge=0, description="BM25 K1 for confidence weighting; 0 disables it.")
    bm25_b: float = Field(default=0.8, ge=0, le=1)
    random_state: int = 42
    num_threads: int = Field(default=0, ge=0)


class BPRParams(FamilyParams):
    factors: int = Field(default=64, ge=1)
    learning_rate: float = Field(default=0.01, gt=0)
    regularization: float = Field(default=0.01, ge=0)
    iterations: int = Field(default=100, ge=1)
    random_state: int = 42
    num_threads: int = Field(default=0, ge=0)


class ContentParams(FamilyParams):
    """Content-based: a user's profile is the confidence-weighted mean of their items' features."""

    recency_half_life_days: float | None = Field(
        default=None, gt=0, description="Scores halve every this many days of a posting's age; None: no prior."
    )


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


Protocol = Literal["per_user", "global_cut"]
Family = Literal["popularity", "recent_popularity", "item_knn", "ease", "als", "bpr", "content", "hybrid"]


class SelectionParams(BaseModel):
    """Model selection across families: what is searched, for how long, and which protocol decides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Plain strings (checked below): Dagster's run config cannot express a list of literals.
    families: list[str] = Field(
        # Cheapest first: each family gets an equal share of the budget the ones before it left.
        # BPR is available but not a default: it was the weakest family on every data set measured
        # here (benchmarks/README.md), and its share is better spent on ALS. The content families come
        # last (a hybrid blends the best collaborative trial); without item features they are skipped.
        default=["popularity", "recent_popularity", "item_knn", "ease", "als", "content", "hybrid"],
        min_length=1,
        description="Candidate families, searched in this order.",
    )
    trials_per_family: int = Field(default=6, ge=1, description="Optuna trials per family (TPE, seeded).")
    time_budget_seconds: float = Field(
        # Sized so search + final fits + evaluation stay within ~120 s at 10 M events (benchmarks/README.md).
        default=45.0,
        gt=0,
        description="Whole search budget; each family gets an equal share of what is left.",
    )
    validation_users: int = Field(
        default=20_000, ge=1, description="Validation users sampled (seeded) to score each trial."
    )
    protocol: str = Field(
        default="global_cut",
        description="Protocol whose validation split selects the model and whose holdout gates it.",
    )
    k: int = Field(default=10, ge=1, description="Cut-off of the validation NDCG that picks the model.")
    seed: int = Field(default=42, description="Seed of the sampler, the validation sample and the models.")
    ease_memory_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="EASE is skipped when its ~4 items² float32 matrices exceed this share of available memory.",
    )
    ease_max_gib: float = Field(
        default=2.0,
        gt=0,
        description="EASE is also skipped above this many GiB, however much memory is free (about 11,500 items at 2).",
    )
    num_threads: int = Field(default=0, ge=0, description="implicit's worker threads (0 = all cores).")

    @field_validator("families")
    @classmethod
    def _known_families(cls, families: list[str]) -> list[str]:
        unknown = sorted(set(families) - set(get_args(Family)))
        if unknown:
            raise ValueError(f"unknown families {unknown}; expected some of {get_args(Family)}")
        return families

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, protocol: str) -> str:
        if protocol not in get_args(Protocol):
            raise ValueError(f"unknown protocol {protocol!r}; expected one of {get_args(Protocol)}")
        return protocol


FAMILY_PARAMS: dict[str, type[FamilyParams]] = {
    "popularity": PopularityParams,
    "recent_popularity": RecentPopularityParams,
    "item_knn": ItemKNNParams,
    "ease": EASEParams,
    "als": ALSParams,
    "bpr": BPRParams,
    "content": ContentParams,
    "hybrid": HybridParams,
}
