"""Test helpers shared by the suite: an embedded environment in a temporary folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recsys_assets.domain.items import generate_catalogue
from recsys_assets.domain.synthetic import SMALL_SPEC, SyntheticSpec, generate_events
from recsys_assets.resources import build_resources
from recsys_assets.resources.registry import ModelRegistry, follow_base_pointer, poll_pull_requests
from recsys_assets.settings import SETTINGS

REPO_ROOT = Path(__file__).resolve().parents[2]
# The local instance's event log (the project's dagster.yaml), for test instances that run the graph.
PROJECT_EVENT_LOG = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["event_log_storage"]

# A short model search for end-to-end tests; the 10-day data set gets a 2-day global time cut. On
# this small set BM25 item-kNN is the best family, so the selection may be the baseline itself:
# the default gate then compares it with popularity only (min_relative_lift is tested on its own).
FAST_SELECTION = {
    "ops": {
        "training_set": {"config": {"cut_days": 2}},
        "trained_model": {
            "config": {"families": ["popularity", "item_knn", "ease", "als"], "trials_per_family": 3, "num_threads": 1}
        },
    }
}

# The same search, retrained even when the window, code and settings are unchanged (a rerun of a
# partition is otherwise skipped once its last retrain was released).
FORCED_SELECTION = {
    "ops": {
        **FAST_SELECTION["ops"],
        "trained_model": {"config": {**FAST_SELECTION["ops"]["trained_model"]["config"], "force": True}},
    }
}


# Every asset of the graph, in lineage order.
ASSET_KEYS = [
    "interactions",
    "items",
    "item_features",
    "training_set",
    "trained_model",
    "baseline_models",
    "model_evaluation",
    "model_bundle",
    "model_release",
    "recommendations",
    "recommendation_outcomes",
]


def local_env(root: Path, **overrides: str) -> dict[str, str]:
    """Environment for the embedded default with every path under `root`."""
    return {"RECSYS_DATA_DIR": str(root), "RECSYS_TRAINING_WINDOW_DAYS": "28", **overrides}


def local_resources(root: Path, **overrides: str) -> dict[str, Any]:
    return build_resources(local_env(root, **overrides))


def seed(resources: dict[str, Any], spec: SyntheticSpec = SMALL_SPEC) -> dict[str, int]:
    """Write synthetic events and their postings into the warehouse; returns rows (events) per day."""
    resources["item_catalogue"].replace_items(generate_catalogue(spec))
    return resources["warehouse"].replace_days(generate_events(spec))


def merge_release(resources: dict, version: str) -> None:
    """The reviewer merges the version's local release proposal, and the release sensor's work follows."""
    registry = ModelRegistry(resources["model_store"], SETTINGS.model_name)
    publisher, pointer = resources["release_publisher"], f"models/{SETTINGS.model_name}.json"
    status = registry.status(version)
    assert status is not None and status.state == "proposed" and status.pull_request_id
    publisher.merge(status.pull_request_id, pointer)
    poll_pull_requests(registry, publisher, [status])
    follow_base_pointer(registry, publisher, pointer)
    assert registry.champion().version == version  # type: ignore[union-attr]
