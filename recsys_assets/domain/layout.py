"""Where every artefact lives: the one place that names folders, files and object keys.

Two stores hold the project's files:

- the **artefact store** (`RECSYS_ARTIFACTS_URI`): per-asset, per-partition intermediate files
  that one step writes and the next reads, e.g. `training_set/2026-11-28/runs/<run>/global_cut/train.npz`;
- the **model store**: write-once bundles under `models/<model>/<version>/`, the champion
  pointer `models/<model>/champion.json`, and local release proposals under `releases/`.

Renaming a file is one edit here; every reader and writer goes through these accessors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from recsys_assets.domain.names import safe_name
from recsys_assets.domain.storage import join

# The user x item matrices of one evaluation protocol's split, one `.npz` file each in the protocol's
# folder: `train` = `fit` + `validation` (tuning), `holdout` (scored), `cold_holdout` (held-out pairs of
# catalogue items unseen in training, scored apart as cold items).
PROTOCOL_MATRICES = ("fit", "validation", "train", "holdout", "cold_holdout")


@dataclass(frozen=True)
class InteractionsFiles:
    """One day's extract."""

    folder: str

    @property
    def events(self) -> str:
        return join(self.folder, "events.parquet")

    @property
    def rejected(self) -> str:
        """Quarantined malformed rows, kept for inspection next to the extract."""
        return join(self.folder, "rejected.parquet")


@dataclass(frozen=True)
class ItemFiles:
    """One day's catalogue snapshot and the item features built from it."""

    folder: str

    @property
    def items(self) -> str:
        return join(self.folder, "items.parquet")

    @property
    def features(self) -> str:
        """The L2-normalised sparse feature matrix, one row per catalogue item (in `items` order)."""
        return join(self.folder, "features.npz")

    @property
    def transformer(self) -> str:
        """The fitted feature transformer as arrays (vocabulary, idf, categories): no pickle."""
        return join(self.folder, "transformer.npz")


@dataclass(frozen=True)
class MatrixFiles:
    """A folder of named user x item matrices, one `.npz` file each."""

    folder: str
    names: ClassVar[tuple[str, ...]]

    def matrix(self, name: str) -> str:
        if name not in self.names:
            raise ValueError(f"unknown matrix {name!r}; expected one of {self.names}")
        return join(self.folder, f"{name}.npz")


class ProtocolFiles(MatrixFiles):
    """One evaluation protocol's split of a training set."""

    names = PROTOCOL_MATRICES


class TrainingSetFiles(MatrixFiles):
    """The window's matrices, id maps and summary of one training set, and a folder per protocol's split.

    `full` holds every pair of the window (what the served model is refitted on), `times` the day each
    pair was first seen (for time decay).
    """

    names = ("full", "times")

    def protocol(self, name: str) -> ProtocolFiles:
        return ProtocolFiles(join(self.folder, safe_name(name, "protocol")))

    @property
    def user_ids(self) -> str:
        return join(self.folder, USER_IDS)

    @property
    def item_ids(self) -> str:
        return join(self.folder, ITEM_IDS)

    @property
    def history(self) -> str:
        """What each user saw in the window (binary `full` as uint8): the bundle ships it as it is."""
        return join(self.folder, "history.npz")

    @property
    def summary(self) -> str:
        """Written last: its presence marks a complete training set."""
        return join(self.folder, "summary.json")


@dataclass(frozen=True)
class ModelFiles:
    """The trained model and the training report the entrypoint writes."""

    folder: str

    def model(self, protocol: str) -> str:
        """The selected model refitted on `protocol`'s training matrix (what the evaluation scores)."""
        return join(self.folder, f"model_{protocol}.npz")

    @property
    def served_model(self) -> str:
        """The selected model refitted on the whole window, both holdouts included (what is served)."""
        return join(self.folder, "model_full.npz")

    @property
    def report(self) -> str:
        return join(self.folder, TRAINING_REPORT)


@dataclass(frozen=True)
class BaselineFiles:
    """The fitted baselines, one file each."""

    folder: str

    def model(self, name: str) -> str:
        return join(self.folder, f"{name}.npz")


@dataclass(frozen=True)
class EvaluationFiles:
    folder: str

    @property
    def metrics(self) -> str:
        return join(self.folder, "metrics.json")

    @property
    def plot(self) -> str:
        """The bundle's metrics plot, drawn by the evaluation step (where the plotting library is already loaded)."""
        return join(self.folder, "metrics.png")

    @property
    def champion(self) -> str:
        """Where the champion bundle's files are staged for the evaluation step (which verifies them)."""
        return join(self.folder, "champion")


@dataclass(frozen=True)
class BundleRefFiles:
    folder: str

    @property
    def ref(self) -> str:
        """Which bundle version this partition's run wrote, and where."""
        return join(self.folder, "bundle.json")


# The assets whose artefacts live per run (`<root>/<asset>/<partition>/runs/<run_id>/`); the day's
# extract (`interactions`) is shared by every run of the day instead.
RUN_ASSETS = ("items", "item_features", "training_set", "trained_model", "baseline_models", "model_evaluation",
              "model_bundle")  # fmt: skip
RUNS_FOLDER = "runs"


@dataclass(frozen=True)
class ArtifactLayout:
    """Addresses of every intermediate artefact under one root URI (local folder, s3:// or gs://).

    A day's extract is shared by every run that trains on that day. Everything built from it
    (training set, models, evaluation, bundle reference) lives under the id of the run that built
    it, so two runs of one partition never read each other's files and a bundle is always made
    of its own run's model and metrics.
    """

    root: str
    run: str

    def _folder(self, asset: str, partition_key: str) -> str:
        return join(self.root, asset, partition_key, RUNS_FOLDER, self.run)

    def interactions(self, partition_key: str) -> InteractionsFiles:
        return InteractionsFiles(join(self.root, "interactions", partition_key))

    def items(self, partition_key: str) -> ItemFiles:
        return ItemFiles(self._folder("items", partition_key))

    def item_features(self, partition_key: str) -> ItemFiles:
        return ItemFiles(self._folder("item_features", partition_key))

    def training_set(self, partition_key: str) -> TrainingSetFiles:
        return TrainingSetFiles(self._folder("training_set", partition_key))

    def trained_model(self, partition_key: str) -> ModelFiles:
        return ModelFiles(self._folder("trained_model", partition_key))

    def baseline_models(self, partition_key: str) -> BaselineFiles:
        return BaselineFiles(self._folder("baseline_models", partition_key))

    def model_evaluation(self, partition_key: str) -> EvaluationFiles:
        return EvaluationFiles(self._folder("model_evaluation", partition_key))

    def model_bundle(self, partition_key: str) -> BundleRefFiles:
        return BundleRefFiles(self._folder("model_bundle", partition_key))


# Files shared by training sets and bundles (a bundle ships the training set's id maps as they are).
USER_IDS = "user_ids.parquet"
ITEM_IDS = "item_ids.parquet"
TRAINING_REPORT = "training_report.json"


class BundleFile:
    """Names of the files inside a model bundle (relative to the bundle's prefix)."""

    MANIFEST = "manifest.json"
    MODEL = "model.npz"
    USER_IDS = USER_IDS
    ITEM_IDS = ITEM_IDS
    TRAINING_REPORT = TRAINING_REPORT
    MODEL_CARD = "model_card.md"
    METRICS_PLOT = "metrics.png"
    EVALUATED_FOLDER = "evaluated"
    # The fitted item feature transformer (arrays, no pickle): serving turns new postings into features.
    ITEM_TRANSFORMER = "item_transformer.npz"
    # Which items each user saw in the served model's window (binary users x items, the id maps' order):
    # the history a known user's list excludes and is ranked from, and the counts of the popularity fallback.
    HISTORY = "history.npz"

    @staticmethod
    def evaluated(protocol: str) -> str:
        """The model trained on `protocol`'s train split: the one its offline evaluation scored."""
        return f"{BundleFile.EVALUATED_FOLDER}/{protocol}.npz"


@dataclass(frozen=True)
class ModelStoreKeys:
    """Object keys of one model's bundles, champion pointer and local release proposals."""

    model_name: str

    def __post_init__(self) -> None:
        safe_name(self.model_name, "model name")

    @property
    def models_prefix(self) -> str:
        return f"models/{self.model_name}/"

    def bundle_prefix(self, version: str) -> str:
        return f"{self.models_prefix}{version}/"

    def bundle_file(self, version: str, name: str) -> str:
        return self.bundle_prefix(version) + name

    def manifest(self, version: str) -> str:
        return self.bundle_file(version, BundleFile.MANIFEST)

    @property
    def champion(self) -> str:
        return f"{self.models_prefix}champion.json"

    def version_of_manifest_key(self, key: str) -> str | None:
        """The version a `.../<version>/manifest.json` key belongs to, or None for any other key."""
        suffix = "/" + BundleFile.MANIFEST
        if not key.startswith(self.models_prefix) or not key.endswith(suffix):
            return None
        version = key[len(self.models_prefix) : -len(suffix)]
        return version if version and "/" not in version else None

    @property
    def releases_prefix(self) -> str:
        """Local release proposals of this model, one folder each."""
        return f"releases/{self.model_name}"

    def release_folder(self, version: str, attempt: int = 1) -> str:
        """A local release proposal; a re-proposal of the same version (promote, rollback) gets its own folder."""
        return f"{self.releases_prefix}/{release_name(version, attempt)}"

    def events_prefix(self, version: str) -> str:
        """The version's append-only state history: one write-once object per event."""
        return self.bundle_prefix(version) + "events/"

    def event(self, version: str, sequence: int) -> str:
        """Keyed by the sequence number alone, so two writers racing for the same number cannot both win."""
        return f"{self.events_prefix(version)}{sequence:06d}.json"

    def version_of_event_key(self, key: str) -> str | None:
        """The version a `.../<version>/events/<n>.json` key belongs to, or None for any other key."""
        if not key.startswith(self.models_prefix) or not key.endswith(".json"):
            return None
        parts = key[len(self.models_prefix) :].split("/")
        return parts[0] if len(parts) == 3 and parts[1] == "events" else None

    def sequence_of_event_key(self, key: str) -> int | None:
        """The sequence number an event key holds (`.../events/000007.json` -> 7), or None for another key."""
        stem = key.rsplit("/", 1)[-1].removesuffix(".json")
        return int(stem) if self.version_of_event_key(key) and stem.isdigit() else None

    @property
    def quarantine_prefix(self) -> str:
        """Where unreadable records are moved: a leading dot, so it can never be taken for a version."""
        return f"{self.models_prefix}.quarantine/"

    def quarantined(self, key: str, stamp: str) -> str:
        """Where the record at `key` goes when it is quarantined at `stamp` (its path under the model kept)."""
        return f"{self.quarantine_prefix}{stamp}/{key.removeprefix(self.models_prefix)}"

    @property
    def registry_index(self) -> str:
        """Every version's current state, rebuilt from the event records after each change."""
        return f"{self.models_prefix}registry.json"


def release_name(version: str, attempt: int = 1) -> str:
    """Branch/folder suffix of a release proposal: the version, and the attempt when it is proposed again."""
    return version if attempt == 1 else f"{version}-r{attempt}"


def serving_pointer_path(model_name: str) -> str:
    """Path, in the serving repository, of the file that names the served version."""
    return f"models/{model_name}.json"


PULL_REQUEST_BODY = "PULL_REQUEST.md"
# A local release proposal's outcome ("merged" or "closed"); absent while it is open.
PULL_REQUEST_STATE = "STATE"
# Folder under the local release root that plays the serving repository's base branch.
LOCAL_BASE_BRANCH = "serving-main"
