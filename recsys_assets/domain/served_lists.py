"""The lists served to users: many users at once, from a bundle or from popularity, as one Arrow table.

One function ranks for the daily `recommendations` table and for the online service's known-user
route, so a user's row set in the table and the service's answer agree for the same champion and day.
Users are ranked in blocks by each family's own batched `recommend` (sparse histories in, -1 padded
index matrices out); nothing here loops over users or rows in Python.

A list's `score` is its reciprocal rank (1 / rank): the families' interface ranks, and the hybrid's
own score is already a rank fusion, so a rank-derived score is the one every family shares.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from recsys_assets.domain.events import filled_numpy
from recsys_assets.domain.families.base import binary
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.serving import Bundle
from recsys_assets.domain.verdict import Verdict

LISTS_SCHEMA = pa.schema(
    [
        pa.field("day", pa.date32()),
        pa.field("user_id", pa.string()),
        pa.field("rank", pa.int32()),
        pa.field("item_id", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("model_version", pa.string()),
        pa.field("model_family", pa.string()),
        pa.field("source", pa.string()),
    ]
)
LIST_COLUMNS = tuple(LISTS_SCHEMA.names)
# The version and family written when no champion is released: the lists are popularity's.
NO_CHAMPION = "none"
POPULARITY = "popularity"


def _strings(values: pa.Array | pa.ChunkedArray | list) -> pa.Array:
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values, pa.string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.string())


Ids = pa.Array | pa.ChunkedArray | list


def interaction_matrix(user_ids: Ids, item_ids: Ids, events: pa.Table) -> sp.csr_matrix:
    """Which of `item_ids` each of `user_ids` interacted with in `events` (binary, users x items, in their orders).

    Events of other users or of items outside `item_ids` are left out.
    """
    rows = filled_numpy(pc.index_in(events["user_id"], value_set=_strings(user_ids)), -1).astype(np.int64)
    columns = filled_numpy(pc.index_in(events["item_id"], value_set=_strings(item_ids)), -1).astype(np.int64)
    keep = (rows >= 0) & (columns >= 0)
    matrix = sp.csr_matrix(
        (np.ones(int(keep.sum()), np.float32), (rows[keep], columns[keep])), shape=(len(user_ids), len(item_ids))
    )
    return binary(matrix)


def bundle_histories(bundle: Bundle, rows: np.ndarray) -> sp.csr_matrix:
    """What each user saw in the bundle's window (`history.npz`), one row per entry of `rows` (-1: nothing)."""
    n_items = len(bundle.item_ids)
    if bundle.history is None:
        empty = np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(len(rows) + 1, np.int32)
        return sp.csr_matrix(empty, shape=(len(rows), n_items))
    # The rows' slices of the history's CSR arrays gathered directly: SciPy's fancy row indexing and a
    # diagonal product cost a one-user list (the service's route) more than its ranking.
    history = bundle.history
    known = rows >= 0
    starts = history.indptr[np.where(known, rows, 0)]
    lengths = np.where(known, history.indptr[np.where(known, rows, 0) + 1] - starts, 0)
    indptr = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=indptr[1:])
    positions = np.arange(indptr[-1]) - np.repeat(indptr[:-1] - starts, lengths)
    # Postings added since the build (`Bundle.add_postings`) are columns nobody saw in the window.
    taken = (history.data[positions], history.indices[positions], indptr)
    return binary(sp.csr_matrix(taken, shape=(len(rows), n_items)))


def recommend_lists(
    bundle: Bundle,
    user_ids: Ids,
    n: int,
    day: date,
    histories: sp.csr_matrix | None = None,
    bundle_history: bool = True,
) -> pa.Table:
    """The champion's top-`n` list of each of `user_ids` (distinct), as rows of `LISTS_SCHEMA`.

    A user the model was trained on gets the model's list (`source = model`) from what they saw in the
    bundle's window plus `histories` (one binary row per user over the bundle's items: interactions
    since the build), never one of those items nor an item the bundle excludes (closed postings:
    `Bundle.exclude_closed`). A user it does not know gets the fallback (`source = fallback`): the
    model folded in from `histories` where the family can and the history holds known items, else
    popularity; so does a known user the model ranks nothing for.

    `bundle_history=False` leaves the bundle's window out of what a user saw: for a day before the end of
    the champion's training data, whose window holds interactions that came after the day.
    """
    users = _strings(user_ids)
    # The bundle's id -> row map is built once at load: hashing its 200 k ids per call cost a one-user
    # list (the service's route) about 25 ms, 30x the ranking itself.
    rows = bundle.user_rows(users.to_pylist())
    seen = bundle_histories(bundle, rows if bundle_history else np.full(len(rows), -1, np.int64))
    if histories is not None:
        seen = binary(sp.csr_matrix(seen + histories))
    known = rows >= 0
    ranked = np.full((len(users), n), -1, dtype=np.int64)
    if known.any():
        at = np.flatnonzero(known)
        ranked[at] = bundle.model.recommend(rows[at], seen[at], n)
    from_model = known & (ranked >= 0).any(axis=1)
    if bundle.model.folds_in:
        at = np.flatnonzero(~known & (np.diff(seen.indptr) > 0))
        if len(at):
            ranked[at] = bundle.model.recommend(np.full(len(at), -1, np.int64), seen[at], n)
    at = np.flatnonzero(~(ranked >= 0).any(axis=1))
    if len(at):
        ranked[at] = bundle.popularity_model().recommend(np.full(len(at), -1, np.int64), seen[at], n)
    source = np.where(from_model, "model", "fallback")
    return lists_table(day, users, ranked, bundle.item_ids, source, bundle.version, bundle.model.family)


def popularity_lists(
    user_ids: Ids,
    counted: pa.Table,
    n: int,
    day: date,
    seen: pa.Table | None = None,
    closed_item_ids: Ids | None = None,
    version: str = NO_CHAMPION,
) -> pa.Table:
    """Popularity's top-`n` list of each of `user_ids`: items by how many users interacted with them in `counted`.

    What a user interacted with in `seen` (default: `counted`) is never listed back, nor is a posting in
    `closed_item_ids`. Every row is a fallback (`source = fallback`, family `popularity`, `version`): what
    is served before any champion, and the counterfactual the outcome is measured against.
    """
    users = _strings(user_ids)
    items = pc.unique(_strings(counted["item_id"]))
    model = new_model(POPULARITY).fit(interaction_matrix(pc.unique(_strings(counted["user_id"])), items, counted))
    if closed_item_ids is not None and len(closed_item_ids):
        model.exclude_items(filled_numpy(pc.is_in(items, value_set=_strings(closed_item_ids)), False).astype(bool))
    history = interaction_matrix(users, items, counted if seen is None else seen)
    ranked = model.recommend(np.full(len(users), -1, np.int64), history, n)
    source = np.full(len(users), "fallback")
    return lists_table(day, users, ranked, items, source, version, POPULARITY)


def lists_table(
    day: date,
    user_ids: pa.Array,
    ranked: np.ndarray,
    item_ids: pa.Array,
    source: np.ndarray,
    version: str,
    family: str,
) -> pa.Table:
    """Rows of `LISTS_SCHEMA` from a users x n matrix of item indices (-1: empty slot, left out)."""
    row, slot = np.nonzero(ranked >= 0)
    rank = (slot + 1).astype(np.int32)
    count = len(row)
    return pa.table(
        {
            "day": pa.array(np.full(count, np.datetime64(day, "D"))).cast(pa.date32()),
            "user_id": user_ids.take(pa.array(row, pa.int64())),
            "rank": pa.array(rank),
            "item_id": _strings(item_ids).take(pa.array(ranked[row, slot], pa.int64())),
            "score": pa.array(1.0 / rank.astype(np.float64)),
            "model_version": pa.array(np.full(count, version, dtype=object), pa.string()),
            "model_family": pa.array(np.full(count, family, dtype=object), pa.string()),
            "source": pa.array(source[row].astype(object), pa.string()),
        },
        schema=LISTS_SCHEMA,
    )


def user_list(table: pa.Table, user_id: str) -> pa.Table:
    """`user_id`'s rows of a lists table, best first."""
    return table.filter(pc.equal(table["user_id"], pa.scalar(user_id, pa.string()))).sort_by("rank")


def forbidden_slots(lists: pa.Table, seen: pa.Table, closed_item_ids: Ids) -> tuple[int, int]:
    """How many list rows hold an item their user interacted with in `seen`, and how many a closed posting."""
    pairs = lists.select(["user_id", "item_id"])
    seen_pairs = seen.select(["user_id", "item_id"]).group_by(["user_id", "item_id"]).aggregate([])
    repeated = pairs.join(seen_pairs, ["user_id", "item_id"], join_type="inner").num_rows
    closed = int(np.count_nonzero(filled_numpy(pc.is_in(pairs["item_id"], value_set=_strings(closed_item_ids)), False)))
    return repeated, closed


def lists_verdict(lists: pa.Table, seen: pa.Table, closed_item_ids: Ids) -> Verdict:
    """Whether no list holds an item its user already interacted with (in the active window) or a closed posting."""
    repeated, closed = forbidden_slots(lists, seen, closed_item_ids)
    return Verdict(
        passed=repeated == 0 and closed == 0,
        description=f"{repeated:,} slots hold an item the user already interacted with and {closed:,} a closed "
        f"posting, of {lists.num_rows:,} slots",
        numbers={"seen_slots": repeated, "closed_slots": closed, "slots": lists.num_rows},
    )
