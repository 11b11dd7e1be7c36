"""Complete bundles written straight into a model store, for registry and release tests without training."""

from __future__ import annotations

from recsys_assets.domain.metrics import headline_names
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.records import manifest_v2


def publish_version(store: ModelStore, version: str, ndcg: float = 0.25, partition: str = "2026-02-28") -> str:
    """A complete bundle `version` of the project's model (a model card and a manifest) in `store`."""
    manifest = {
        **manifest_v2(),
        "model_name": SETTINGS.model_name,
        "version": version,
        "metrics": {"model": {name: ndcg for name in headline_names(10)}, "baselines": {}},
        "champion": None,
        "dagster": {"run_id": f"run-{version}", "partition": partition},
    }
    return store.publish_bundle(SETTINGS.model_name, version, {"model_card.md": b"# card"}, manifest)
