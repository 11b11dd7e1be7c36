"""The split's and the search's parameter sets, each declared once: the assets' run config inherits from them.

They are plain pydantic models so the domain code (and the training entrypoint in another
process) uses them without Dagster; `dg.Config` subclasses add nothing but the asset's own knobs.
Each model family's own parameters live beside it (`families/`).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from recsys_assets.domain.events import EVENT_TYPE_WEIGHTS
from recsys_assets.domain.families.registry import FAMILIES


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
    min_holdout_users: int = Field(
        default=200,
        ge=1,
        description="The global cut widens (in steps of cut_days, up to 4 x cut_days and a third of the data's "
        "span) until its holdout has this many scorable users; fewer are reported in one line.",
    )


# The evaluation protocols by name (splitting.PROTOCOLS builds each; a test checks the two agree).
Protocol = Literal["per_user", "global_cut"]


class ItemFeatureParams(BaseModel):
    """How the catalogue's postings become item features (TF-IDF on text, one-hot category and location)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_df: int = Field(default=1, ge=1, description="A term must occur in at least this many postings.")
    max_features: int = Field(default=50_000, ge=1, description="Largest TF-IDF vocabulary (most frequent terms).")
    categorical_weight: float = Field(
        default=0.5, ge=0, le=10, description="Weight of the one-hot category/location block against the text block."
    )


class SelectionParams(BaseModel):
    """Model selection across families: what is searched, for how long, and which protocol decides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Plain strings (checked below): Dagster's run config cannot express a list of literals.
    families: list[str] = Field(
        # Cheapest first: in round 1 each family gets an equal share of the half of the budget the ones
        # before it left; round 2 gives the rest to the better half of them.
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
        description="Whole search budget: half for every family's first points, the rest for the better half.",
    )
    validation_folds: int = Field(
        default=2,
        ge=1,
        le=5,
        description="Rolling-origin validation folds: each trial is fitted on the history before each and "
        "scored on it; families are compared on the mean.",
    )
    ceiling_seconds: float = Field(
        default=20.0,
        ge=0,
        description="Time spent refitting each other family's best trial on every protocol's train split, to "
        "report the selected model's holdout score beside the best family's (0: off).",
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
        unknown = sorted(set(families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown families {unknown}; expected some of {FAMILIES}")
        return families

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, protocol: str) -> str:
        if protocol not in get_args(Protocol):
            raise ValueError(f"unknown protocol {protocol!r}; expected one of {get_args(Protocol)}")
        return protocol
