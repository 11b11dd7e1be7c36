"""Score the currently promoted model (the champion) on a new training set's holdout."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys_assets.domain.events import filled_numpy
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import ALSParams
from recsys_assets.domain.recommenders import confidence, factor_model, recommend
from recsys_assets.domain.records import ChampionScore
from recsys_assets.domain.splitting import TrainingSet


@dataclass(frozen=True)
class ChampionModel:
    """What scoring needs of a champion bundle: its item factors, item ids and ALS parameters."""

    version: str
    item_factors: np.ndarray
    item_ids: pa.Array
    params: ALSParams


def champion_recommendations(champion: ChampionModel, data: TrainingSet, users: np.ndarray, k: int) -> np.ndarray:
    """The champion's top-k for `users`, as item indices of the *current* catalogue (-1: empty slot).

    The champion was trained on other users and items: its item factors are mapped onto the
    current catalogue by id, and each user is folded in from their current training rows
    (ALS's closed-form user solve), so both models answer exactly the same questions.
    """
    # Only items both catalogues hold can be recommended: a posting that is gone must not take a slot.
    to_current = filled_numpy(pc.index_in(champion.item_ids, value_set=data.item_ids), -1)
    shared = np.flatnonzero(to_current >= 0)
    if len(shared) == 0:
        return np.full((len(users), k), -1, dtype=np.int64)
    current_of_shared = to_current[shared]
    shared_of_current = np.full(data.train.shape[1], -1, dtype=np.int64)
    shared_of_current[current_of_shared] = np.arange(len(shared))
    coo = data.train.tocoo()
    known = shared_of_current[coo.col] >= 0
    seen = sp.csr_matrix(
        (coo.data[known], (coo.row[known], shared_of_current[coo.col[known]])),
        shape=(data.train.shape[0], len(shared)),
    )
    model = factor_model(
        np.zeros((data.train.shape[0], champion.item_factors.shape[1]), np.float32), champion.item_factors[shared]
    )
    model.regularization, model.alpha = champion.params.regularization, champion.params.alpha
    champion_recs = recommend(model, confidence(seen, champion.params), users, k, recalculate_user=True)
    return np.where(champion_recs >= 0, current_of_shared[np.maximum(champion_recs, 0)], -1)


def shared_items(champion: ChampionModel, data: TrainingSet) -> int:
    """How many of the champion's items the current catalogue still holds (0: it can recommend nothing)."""
    return int(np.count_nonzero(filled_numpy(pc.is_in(champion.item_ids, value_set=data.item_ids), False)))


def score_champion(champion: ChampionModel, data: TrainingSet, k: int) -> ChampionScore:
    """The champion's metrics on `data.holdout`, comparable with the challenger's.

    A champion that shares no items with the current catalogue scores 0 everywhere.
    """
    metrics = evaluate(lambda users: champion_recommendations(champion, data, users, k), data.holdout, k)
    return ChampionScore(version=champion.version, metrics=metrics)
