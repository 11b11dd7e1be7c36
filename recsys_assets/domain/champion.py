"""Score the currently promoted model (the champion) on a new training set's holdout.

The champion is used exactly as serving uses it (the bundle's scoring contract): each current user
is looked up by id (or folded in from their history where the family allows), their current
history is mapped onto the champion's catalogue by item id, and its item ids are mapped back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys_assets.domain.events import filled_numpy
from recsys_assets.domain.families.base import binary
from recsys_assets.domain.metrics import evaluate, ndcg_by_user, ranked_once
from recsys_assets.domain.records import ChampionScore
from recsys_assets.domain.serving import Bundle

# Users ranked per call: the over-fetched candidate lists stay small.
USER_BLOCK = 1024


def champion_recommendations(
    champion: Bundle,
    seen: sp.csr_matrix,
    user_ids: pa.Array,
    item_ids: pa.Array,
    users: np.ndarray,
    k: int,
    excluded: np.ndarray | None = None,
) -> np.ndarray:
    """The champion's top-k for rows `users` of `seen`, as current item indices (-1: empty slot).

    Items the current catalogue no longer holds are skipped (a posting that is gone must not take
    a slot): the champion ranks k plus that many candidates, so the top k current items are exact.
    Current items where `excluded` is True (postings closed at the evaluation's cut) are added to
    the champion's own excluded items for the call, as the challenger's are.
    """
    to_current = filled_numpy(pc.index_in(champion.item_ids, value_set=item_ids), -1)
    to_champion = filled_numpy(pc.index_in(item_ids, value_set=champion.item_ids), -1)
    gone = int((to_current < 0).sum())
    width = k + gone
    own = champion.model.excluded
    if excluded is not None:
        closed_now = np.zeros(len(to_current), dtype=bool)
        mapped = to_current >= 0
        closed_now[mapped] = excluded[to_current[mapped]]
        champion.model.exclude_items(closed_now if own is None else closed_now | own)
    try:
        return _ranked(champion, seen, user_ids, users, k, width, to_current, to_champion)
    finally:
        champion.model.exclude_items(own)


def _ranked(
    champion: Bundle,
    seen: sp.csr_matrix,
    user_ids: pa.Array,
    users: np.ndarray,
    k: int,
    width: int,
    to_current: np.ndarray,
    to_champion: np.ndarray,
) -> np.ndarray:
    """`champion_recommendations` past the masking: rank `width` champion items per user, keep k current ones."""
    out = np.full((len(users), k), -1, dtype=np.int64)
    history = binary(seen)
    champion_rows = champion.user_rows(np.asarray(user_ids.to_numpy(zero_copy_only=False))[users].tolist())
    for start in range(0, len(users), USER_BLOCK):
        block = users[start : start + USER_BLOCK]
        coo = history[block].tocoo()
        known = to_champion[coo.col] >= 0
        rows = sp.csr_matrix(
            (coo.data[known], (coo.row[known], to_champion[coo.col[known]])), shape=(len(block), len(to_current))
        )
        ranked = champion.model.recommend(champion_rows[start : start + USER_BLOCK], rows, width)
        mapped = np.where(ranked >= 0, to_current[np.maximum(ranked, 0)], -1)
        # Current items first, in the champion's order; gone items and empty slots go to the tail.
        order = np.argsort(mapped < 0, axis=1, kind="stable")
        out[start : start + len(block)] = np.take_along_axis(mapped, order, axis=1)[:, :k]
    return out


def shared_items(champion_item_ids: pa.Array, item_ids: pa.Array) -> int:
    """How many of the champion's items the current catalogue still holds (0: it can recommend nothing)."""
    return int(np.count_nonzero(filled_numpy(pc.is_in(champion_item_ids, value_set=item_ids), False)))


def score_champion(
    champion: Bundle,
    seen: sp.csr_matrix,
    holdout: sp.csr_matrix,
    user_ids: pa.Array,
    item_ids: pa.Array,
    k: int,
    excluded: np.ndarray | None = None,
) -> tuple[ChampionScore, np.ndarray]:
    """The champion's metrics on `holdout`, from the same histories as the challenger's, and its NDCG@k per user.

    The per-user scores (holdout users in row order) pair with the challenger's for the lift's interval.
    A champion that shares no items with the current catalogue scores 0 everywhere; it never
    recommends current items where `excluded` is True (closed at the cut), like the challenger.
    """
    users = np.flatnonzero(np.diff(holdout.indptr) > 0)
    rank = ranked_once(
        lambda users: champion_recommendations(champion, seen, user_ids, item_ids, users, k, excluded),
        users,
        holdout.shape[0],
        k,
    )
    score = ChampionScore(version=champion.version, metrics=evaluate(rank, holdout, k))
    return score, ndcg_by_user(rank, holdout, k)
