"""Complete bundles written straight into a model store: card-only ones for registry and release tests, and
servable ones fitted on a small matrix for the online service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recsys_assets.domain import served_lists, storage
from recsys_assets.domain.families.base import Recommender, binary
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.layout import BundleFile
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


@dataclass(frozen=True)
class FittedBundle:
    """A servable bundle published by `publish_fitted`: its model, ids and history, as the store holds them."""

    version: str
    uri: str
    model: Recommender
    user_ids: list[str]
    item_ids: list[str]
    history: sp.csr_matrix


def interaction_matrix(users: int = 120, items: int = 40, seed: int = 0) -> sp.csr_matrix:
    """Users in four taste groups, each favouring its own quarter of the items, with some noise."""
    rng = np.random.default_rng(seed)
    group = np.arange(users) % 4
    own = rng.random((users, items)) < 0.5
    own &= (np.arange(items)[None, :] * 4 // items) == group[:, None]
    noise = rng.random((users, items)) < 0.02
    # A long-tail popularity on top, so the popularity fallback has a clear order.
    popular = rng.random((users, items)) < np.linspace(0.1, 0.0, items)[None, :]
    return sp.csr_matrix((own | noise | popular).astype(np.float32))


def publish_fitted(
    store: ModelStore,
    version: str,
    family: str = "item_knn",
    params: dict[str, Any] | None = None,
    matrix: sp.csr_matrix | None = None,
    excluded: np.ndarray | None = None,
    with_history: bool = True,
) -> FittedBundle:
    """A real bundle of `family` fitted on `matrix`, published through the store's all-or-nothing protocol.

    `excluded` is the build-time mask of closed postings the model is saved with.
    """
    matrix = interaction_matrix() if matrix is None else matrix
    user_ids = [f"u{row:04d}" for row in range(matrix.shape[0])]
    item_ids = [f"j{column:04d}" for column in range(matrix.shape[1])]
    return _publish(store, version, family, params, matrix, user_ids, item_ids, excluded, with_history)


def publish_from_events(
    store: ModelStore,
    version: str,
    events: pa.Table,
    item_ids: list[str],
    family: str = "item_knn",
    params: dict[str, Any] | None = None,
) -> FittedBundle:
    """A real bundle of `family` fitted on `events` (user and item ids as they are), over the catalogue `item_ids`."""
    user_ids = sorted(set(events["user_id"].to_pylist()))
    matrix = served_lists.interaction_matrix(pa.array(user_ids, pa.string()), pa.array(item_ids, pa.string()), events)
    return _publish(store, version, family, params, matrix, user_ids, item_ids)


def _publish(
    store: ModelStore,
    version: str,
    family: str,
    params: dict[str, Any] | None,
    matrix: sp.csr_matrix,
    user_ids: list[str],
    item_ids: list[str],
    excluded: np.ndarray | None = None,
    with_history: bool = True,
) -> FittedBundle:
    model = new_model(family, params).fit(matrix).exclude_items(excluded)
    history = binary(matrix)
    files = {
        BundleFile.MODEL: model.to_bytes(),
        BundleFile.USER_IDS: storage.table_to_bytes(pa.table({"user_id": user_ids})),
        BundleFile.ITEM_IDS: storage.table_to_bytes(pa.table({"item_id": item_ids})),
    }
    if with_history:
        files[BundleFile.HISTORY] = storage.sparse_to_bytes(history)
    manifest = {
        **manifest_v2(),
        "model_name": SETTINGS.model_name,
        "version": version,
        "model": {"family": family, "params": model.params.model_dump(mode="json")},
        "champion": None,
    }
    uri = store.publish_bundle(SETTINGS.model_name, version, files, manifest)
    return FittedBundle(version, uri, model, user_ids, item_ids, history)
