"""Score the currently promoted model (the champion) on a new training set's holdout."""

from __future__ import annotations

import io

import numpy as np
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys_assets import storage
from recsys_assets.evaluation.metrics import ranking_metrics
from recsys_assets.features.training_set import TrainingSet
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.training.models import ALSParams, confidence, factor_model, recommend


def evaluate_champion(store: ModelStore, model_name: str, data: TrainingSet, k: int) -> dict | None:
    """The champion's metrics on `data.holdout`, or None when nothing has been promoted yet.

    The champion was trained on other users and items: its item factors are mapped onto the
    current catalogue by id, and each user is folded in from their current training rows
    (ALS's closed-form user solve), so both models answer exactly the same questions.
    """
    pointer = store.read_champion(model_name)
    if pointer is None:
        return None
    version = pointer["version"]
    manifest = store.read_manifest(model_name, version)
    item_factors = np.load(io.BytesIO(store.read_file(model_name, version, "item_factors.npy")), allow_pickle=False)
    champion_items = storage.table_from_bytes(store.read_file(model_name, version, "item_ids.parquet"))["item_id"]

    to_champion = pc.fill_null(pc.index_in(data.item_ids, value_set=champion_items), -1).to_numpy()
    to_current = pc.fill_null(pc.index_in(champion_items, value_set=data.item_ids), -1).to_numpy()
    coo = data.train.tocoo()
    known = to_champion[coo.col] >= 0
    seen = sp.csr_matrix(
        (coo.data[known], (coo.row[known], to_champion[coo.col[known]])),
        shape=(data.train.shape[0], len(champion_items)),
    )
    params = ALSParams(**manifest["hyperparameters"])
    model = factor_model(np.zeros((data.train.shape[0], item_factors.shape[1]), np.float32), item_factors)
    model.regularization, model.alpha = params.regularization, params.alpha

    users = np.flatnonzero(np.diff(data.holdout.indptr) > 0)
    recs = np.full((data.holdout.shape[0], k), -1, dtype=np.int64)
    champion_recs = recommend(model, confidence(seen, params), users, k, recalculate_user=True)
    recs[users] = np.where(champion_recs >= 0, to_current[np.maximum(champion_recs, 0)], -1)
    return {"version": version, "metrics": ranking_metrics(recs, data.holdout, n_items=data.train.shape[1])}
