"""Typed records passed between assets and kept in the model store, each with to/from JSON.

A record written by one step is read by another step, another process, or (the manifest) months
later by a newer version of this code, so every record is validated when it is read: a renamed
or missing field fails at the read with the field's name, not as a `KeyError` three steps on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recsys_assets.domain.families.registry import FAMILY_CLASSES, Family
from recsys_assets.domain.params import Protocol, SelectionParams, SplitParams

Metrics = dict[str, float]


class Record(BaseModel):
    """Base of every record: immutable, unknown fields refused, JSON in and out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> bytes:
        return self.model_dump_json(indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes | str) -> Any:
        return cls.model_validate_json(data)


class Window(Record):
    """The days of interactions a training set covers."""

    start: str
    end: str
    days: int


class ProtocolCounts(Record):
    """What one evaluation protocol's split holds, in pairs of the training index, and where its days end."""

    fit_pairs: int
    validation_pairs: int
    train_pairs: int = Field(description="fit + validation: what the model this protocol scores is trained on.")
    holdout_pairs: int
    holdout_users: int
    unscored_holdout_pairs: int = Field(
        description="Held-out pairs left out of the scored holdout because their item (or, after a global cut, "
        "their user) has no training pair; the cold-item pairs among them are scored apart."
    )
    cold_item_pairs: int = Field(
        description="Held-out pairs of known users and catalogue items unseen in training: scored apart as cold items."
    )
    fit_end: float = Field(description="End of the data `fit` covers, in days since the epoch.")
    train_end: float = Field(description="End of the data `train` covers, in days since the epoch.")
    cut_days: int | None = Field(
        default=None,
        description="A global cut's held-out days: cut_days, widened to hold out min_holdout_users (None: per-user).",
    )


class SplitCounts(Record):
    """What the split kept and dropped (computed from the events alone), for the window and per protocol."""

    events: int
    events_deduplicated: int
    pairs_kept: int
    users: int
    items: int
    full_pairs: int = Field(description="Pairs of the whole window, both holdouts included.")
    end_day: float = Field(description="End of the data, in days since the epoch (midnight after the last event).")
    first_day: float = Field(description="Start of the data, in days since the epoch (midnight before).")
    protocols: dict[str, ProtocolCounts]


class TrainingSetSummary(SplitCounts):
    """`summary.json` of a training set: the split's counts plus the window it came from."""

    window: Window
    partitions: list[str]
    content_hash: str


class TrainingRequest(Record):
    """What the orchestrator asks of the training entrypoint, sent as the Pipes extras."""

    training_set: str = Field(description="Folder (URI) of the training set to train on.")
    output: str = Field(description="Folder (URI) the model and the training report are written to.")
    search: SelectionParams
    item_features: str | None = Field(
        default=None, description="Folder (URI) of the item features; None leaves the content families out."
    )

    def to_extras(self) -> dict[str, Any]:
        return {"request": self.model_dump(mode="json")}

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> TrainingRequest:
        return cls.model_validate(extras["request"])


class SplitRequest(Record):
    """What the orchestrator asks of the training entrypoint's split step, sent as the Pipes extras.

    The warehouse has written the window's labelled pairs into `training_set`; the step turns them into
    the training set's matrices and `summary.json` there.
    """

    training_set: str = Field(description="Folder (URI) holding the pairs, where the matrices are written.")
    params: SplitParams
    window: Window
    partitions: list[str]
    content_hash: str = Field(description="Content hash of the pairs (the training set's data version).")

    def to_extras(self) -> dict[str, Any]:
        return {"split": self.model_dump(mode="json")}

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> SplitRequest | None:
        """The request in `extras`, or None when they ask for training instead."""
        return cls.model_validate(extras["split"]) if "split" in extras else None


class BaselinesRequest(Record):
    """What the orchestrator asks of the training entrypoint's baselines step (Pipes extras)."""

    training_set: str = Field(description="Folder (URI) of the training set.")
    output: str = Field(description="Folder (URI) the fitted baselines are written to.")

    def to_extras(self) -> dict[str, Any]:
        return {"baselines": self.model_dump(mode="json")}

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> BaselinesRequest | None:
        return cls.model_validate(extras["baselines"]) if "baselines" in extras else None


class EvaluationRequest(Record):
    """What the orchestrator asks of the training entrypoint's evaluation step (Pipes extras)."""

    training_set: str = Field(description="Folder (URI) of the training set.")
    trained_model: str = Field(description="Folder (URI) of the trained model and its report.")
    baselines: str = Field(description="Folder (URI) of the fitted baselines.")
    item_features: str | None = Field(default=None, description="Folder (URI) of the item features, if built.")
    output: str = Field(description="URI the evaluation (`metrics.json`) is written to.")
    plot: str | None = Field(
        default=None, description="URI the bundle's metrics plot (PNG) is drawn to, beside the evaluation."
    )
    k: int
    new_item_days: int
    champion: str | None = Field(
        default=None, description="Folder (URI) the champion bundle's files were staged in; None: no champion."
    )
    champion_unavailable: str | None = Field(default=None, description="Why the champion could not be staged.")
    same_as: str | None = Field(
        default=None, description="The baseline whose configuration the model has (not compared with itself)."
    )

    def to_extras(self) -> dict[str, Any]:
        return {"evaluate": self.model_dump(mode="json")}

    @classmethod
    def from_extras(cls, extras: Mapping[str, Any]) -> EvaluationRequest | None:
        return cls.model_validate(extras["evaluate"]) if "evaluate" in extras else None


class ModelSpec(Record):
    """The model family and the parameters it was trained with (validated by the family on load)."""

    family: Family = "als"
    params: dict[str, Any]

    @model_validator(mode="before")
    @classmethod
    def _complete_params(cls, raw: Any) -> Any:
        """The family's full parameter set: a misspelled or missing parameter fails here, by name."""
        family = FAMILY_CLASSES.get(raw.get("family", "als")) if isinstance(raw, dict) else None
        if family is not None and isinstance(raw.get("params"), dict):
            raw = {**raw, "params": family.params_type.model_validate(raw["params"]).model_dump(mode="json")}
        return raw


class SearchTrial(Record):
    """One candidate (family and parameters) tried on the validation split."""

    family: Family
    params: dict[str, Any]
    validation_ndcg: float
    k: int
    seconds: float
    state: Literal["complete", "pruned", "failed"] = "complete"
    fold_ndcg: list[float] = Field(
        default_factory=list, description="Validation NDCG@k per rolling-origin fold, latest first (the mean above)."
    )


class TrainingReport(Record):
    """What the training entrypoint did: the selected model, every search trial, and its cost."""

    model: ModelSpec
    protocol: Protocol
    search: list[SearchTrial]
    skipped: dict[str, str] = Field(default_factory=dict, description="Families not searched, with the reason.")
    search_seconds: float
    training_seconds: float
    users: int
    items: int
    interactions: int
    full_interactions: int = Field(default=0, description="Pairs of the whole window the served model is refitted on.")
    host: str
    selection_rule: str = Field(default="", description="How the selected trial was chosen, ties included.")
    tied: list[str] = Field(default_factory=list, description="Families tied within noise with the leader.")
    ceiling: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="Per protocol, each family's holdout NDCG@k (its best trial refitted): selected / best.",
    )

    def selected_over_best(self, protocol: str) -> tuple[float, str, float] | None:
        """The selected family's holdout score on `protocol`, the best family and its score; None if not measured."""
        scores = self.ceiling.get(protocol, {})
        if self.model.family not in scores:
            return None
        best = max(scores, key=lambda family: scores[family])
        return scores[self.model.family], best, scores[best]

    def best_trial(self) -> SearchTrial | None:
        complete = [trial for trial in self.search if trial.state == "complete"]
        return max(complete, key=lambda trial: trial.validation_ndcg, default=None)


class ChampionScore(Record):
    version: str
    metrics: Metrics


class HoldoutSize(Record):
    users: int
    pairs: int


class Lift(Record):
    """The model's mean NDCG@k over a reference's on the same users, minus one, with its 95% paired-bootstrap interval.

    `lift`, `low` and `high` are None when the reference scores 0 on every user (no ratio exists).
    """

    users: int
    model: float
    reference: float
    lift: float | None = None
    low: float | None = None
    high: float | None = None

    def significantly_below(self, floor: float) -> bool:
        """Whether the whole interval lies below `floor` (-0.02: significantly more than 2% worse)."""
        return self.high is not None and self.high < floor

    def significantly_above(self, floor: float) -> bool:
        """Whether the whole interval lies above `floor` (0.05: significantly more than 5% better)."""
        return self.model > 0 if self.low is None else self.low > floor

    def text(self) -> str:
        """`+3.1% [-0.4%, +6.5%]`, or the two scores when the reference scored nothing."""
        if self.lift is None or self.low is None or self.high is None:
            return f"{self.model:.4f} against {self.reference:.4f}"
        return f"{self.lift:+.1%} [{self.low:+.1%}, {self.high:+.1%}]"


class ProtocolResult(Record):
    """The model and every baseline scored on one protocol's holdout."""

    model: Metrics
    baselines: dict[str, Metrics]
    holdout: HoldoutSize
    cold_items: dict[str, Metrics] = Field(
        default_factory=dict,
        description="Model and baselines on held-out pairs of catalogue items unseen in training (cold items).",
    )
    cold_holdout: HoldoutSize | None = None
    new_item_share: dict[str, float] = Field(
        default_factory=dict, description="Share of filled recommendation slots given to items under N days old."
    )
    new_item_days: int | None = None
    lifts: dict[str, Lift] = Field(
        default_factory=dict, description="The model's NDCG@k lift over each baseline on the same holdout users."
    )


class EvaluationResult(Record):
    """`metrics.json` of `model_evaluation`: every model scored on the same holdout, under each protocol.

    `model`, `baselines` and `holdout` are the gating protocol's (`protocol`); the champion is
    scored on that protocol's holdout too.
    """

    k: int
    protocol: Protocol
    model: Metrics
    baselines: dict[str, Metrics]
    champion: ChampionScore | None
    holdout: HoldoutSize
    protocols: dict[str, ProtocolResult]
    training_set: TrainingSetSummary
    # Champion items still in the current catalogue; 0 means it could recommend nothing (metrics 0).
    champion_shared_items: int | None = None
    # Why a promoted champion could not be scored (unreadable manifest, missing or corrupt files).
    champion_unavailable: str | None = None
    champion_lift: Lift | None = Field(default=None, description="The model's NDCG@k lift over the champion's.")
    same_as: str | None = Field(
        default=None, description="The baseline whose configuration the model is: the gate does not compare them."
    )


class BundleRef(Record):
    """Which bundle version a partition's run wrote, and where it is."""

    version: str
    uri: str


class ManifestData(Record):
    window: Window
    partitions: list[str]
    events: int
    train_pairs: int
    holdout_pairs: int
    full_pairs: int = Field(default=0, description="Pairs of the whole window (what `model.npz` is trained on).")
    users: int
    items: int
    content_hash: str


class ManifestMetrics(Record):
    model: Metrics
    baselines: dict[str, Metrics]
    lifts: dict[str, Lift] = Field(
        default_factory=dict, description="NDCG@k lift over each baseline and the champion, with its 95% interval."
    )


class ProtocolMetrics(ManifestMetrics):
    holdout_users: int
    cold_items: dict[str, Metrics] = Field(
        default_factory=dict, description="Recall and NDCG on held-out pairs of postings unseen in training."
    )
    cold_pairs: int = 0
    new_item_share: dict[str, float] = Field(default_factory=dict)
    new_item_days: int | None = None


class DagsterRun(Record):
    run_id: str
    partition: str


MANIFEST_SCHEMA_VERSION = 2


class Manifest(Record):
    """`manifest.json`: everything needed to trust, load and compare a bundle, read back for years.

    Version 2 names the model family (`model.family`, `model.params`: any family since issue 11,
    which also added `protocol` and `protocols` with defaults that read older files); version 1 (no
    `schema_version`) had ALS hyperparameters at the top level and is upgraded on read.
    """

    schema_version: Literal[2] = MANIFEST_SCHEMA_VERSION
    model_name: str
    version: str
    created_at: str
    code_version: str | None
    image: str | None
    library_versions: dict[str, str]
    data: ManifestData
    model: ModelSpec
    k: int
    holdout_users: int
    metrics: ManifestMetrics
    protocol: Protocol = Field(default="per_user", description="The protocol `metrics` and the gate come from.")
    protocols: dict[str, ProtocolMetrics] = Field(default_factory=dict, description="Metrics under every protocol.")
    champion: ChampionScore | None
    dagster: DagsterRun
    trained_on: dict[str, str] = Field(
        default_factory=dict,
        description="The data each model file was trained on: `model.npz` (served) and `evaluated/<protocol>.npz`.",
    )
    files: dict[str, str] = Field(default_factory=dict, description="SHA-256 of every other file in the bundle.")

    @classmethod
    def from_json(cls, data: bytes | str) -> Manifest:
        return cls.from_dict(json.loads(data))

    @classmethod
    def from_dict(cls, raw: Any) -> Manifest:
        """A manifest of this or the previous schema version, as the current record."""
        if not isinstance(raw, dict):
            raise ValueError("manifest.json is not a JSON object")
        return cls.model_validate(upgrade_manifest(raw))


def upgrade_manifest(raw: dict[str, Any]) -> dict[str, Any]:
    """The current schema's fields from a manifest of this or the previous schema version."""
    version = raw.get("schema_version", 1)
    if version == MANIFEST_SCHEMA_VERSION:
        return raw
    if version == 1:
        if "hyperparameters" not in raw:
            # A JSON object that is no manifest ({} or a stray file): refused like any other invalid manifest.
            raise ValueError("not a manifest: no schema_version and no hyperparameters")
        upgraded = {key: value for key, value in raw.items() if key != "hyperparameters"}
        upgraded["model"] = {"family": "als", "params": raw["hyperparameters"]}
        upgraded["schema_version"] = MANIFEST_SCHEMA_VERSION
        return upgraded
    raise ValueError(
        f"manifest schema_version {version} is newer than this code understands ({MANIFEST_SCHEMA_VERSION}); "
        "upgrade recsys_assets to read it"
    )


VersionState = Literal["proposed", "released", "rejected", "superseded", "rolled_back"]


class VersionEvent(Record):
    """One write-once entry of a version's state history, stored next to its bundle."""

    version: str
    sequence: int = Field(description="1, 2, ... per version; the object key holds it, so two writers cannot both win.")
    state: VersionState
    at: str
    reason: str
    pull_request: str | None = Field(default=None, description="Link to the release pull request (or local file).")
    pull_request_id: str | None = Field(default=None, description="The publisher's id of that pull request.")
