"""Turn a window of interaction events into the user x item training matrices and a time-based holdout."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import cast

import duckdb
import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from recsys_assets.domain import storage
from recsys_assets.domain.layout import SPLITS, TrainingSetFiles
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.records import SplitCounts, TrainingSetSummary

PER_USER = "per_user"
GLOBAL_CUT = "global_cut"
PROTOCOLS = (PER_USER, GLOBAL_CUT)
DAY_SECONDS = 86_400
# Split codes of a pair in the per-user and the global-cut split.
FIT, VALIDATION, HOLDOUT = 0, 1, 2
# DuckDB's working memory for the split; beyond it the query spills to a temporary folder.
DUCKDB_MEMORY_LIMIT = "2GB"


# The age in days at a reference day of every entry of a matrix (`TrainingSet.ages`).
AgeLookup = Callable[[sp.csr_matrix, float], sp.csr_matrix]


@dataclass(frozen=True)
class ProtocolData:
    """One evaluation protocol's matrices, and the age in days of every training pair at its cut.

    `fit`/`validation` tune hyperparameters; `train` (= fit + validation) trains the model that is
    scored on `holdout`. Ages are measured from the end of the data each matrix trains on, and are
    computed on first use: only fitting needs them, not the evaluation of fitted models (2 s at 10 M).
    """

    name: str
    fit: sp.csr_matrix
    validation: sp.csr_matrix
    train: sp.csr_matrix
    holdout: sp.csr_matrix
    age_at: AgeLookup = field(repr=False)
    fit_end: float
    train_end: float
    # Held-out pairs of catalogue items that `train` never saw: the cold-item evaluation.
    cold_holdout: sp.csr_matrix | None = None

    @cached_property
    def fit_ages(self) -> sp.csr_matrix:
        return self.age_at(self.fit, self.fit_end)

    @cached_property
    def train_ages(self) -> sp.csr_matrix:
        return self.age_at(self.train, self.train_end)


def _pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """row * n_columns + column of every stored entry, in storage order (sorted when the indices are)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices


@dataclass
class TrainingSet:
    """Matrices share one user and one item index; `train` = `fit` + `validation`.

    `train`..`holdout` are the per-user temporal split, `cut_*` the global time cut, `full` every
    pair of the window (both holdouts included, with their confidences: what the served model is
    refitted on), and `times` holds the day (since the epoch, fractional) each pair was first seen.
    """

    full: sp.csr_matrix
    train: sp.csr_matrix
    fit: sp.csr_matrix
    validation: sp.csr_matrix
    holdout: sp.csr_matrix
    cut_train: sp.csr_matrix
    cut_fit: sp.csr_matrix
    cut_validation: sp.csr_matrix
    cut_holdout: sp.csr_matrix
    times: sp.csr_matrix
    holdout_cold: sp.csr_matrix
    cut_holdout_cold: sp.csr_matrix
    user_ids: pa.Array
    item_ids: pa.Array
    counts: SplitCounts

    def to_files(self, files: TrainingSetFiles) -> dict[str, bytes]:
        """Payload of every file of the set, keyed by its address in `files` (the summary excluded)."""
        payloads = {files.matrix(name): storage.sparse_to_bytes(getattr(self, name)) for name in SPLITS}
        payloads[files.user_ids] = storage.table_to_bytes(pa.table({"user_id": self.user_ids}))
        payloads[files.item_ids] = storage.table_to_bytes(pa.table({"item_id": self.item_ids}))
        return payloads

    @classmethod
    def load(cls, files: TrainingSetFiles) -> TrainingSet:
        summary = TrainingSetSummary.from_json(storage.read_bytes(files.summary))
        matrices = dict(zip(SPLITS, storage.read_sparse([files.matrix(name) for name in SPLITS]), strict=True))
        return cls(
            **matrices,
            user_ids=storage.table_from_bytes(storage.read_bytes(files.user_ids))["user_id"].combine_chunks(),
            item_ids=storage.table_from_bytes(storage.read_bytes(files.item_ids))["item_id"].combine_chunks(),
            counts=summary,
        )

    def ages(self, matrix: sp.csr_matrix, reference_day: float) -> sp.csr_matrix:
        """Age in days at `reference_day` of every entry of `matrix`, in the same sparsity structure.

        A sorted-key lookup into `times` rather than sparse fancy indexing, which is slower and
        returns a matrix instead of values when `matrix` is empty.
        """
        times, times_keys = self.times, self._times_keys
        keys = _pair_keys(matrix)
        position = np.minimum(np.searchsorted(times_keys, keys), max(len(times_keys) - 1, 0))
        found = times_keys[position] == keys if len(times_keys) else np.zeros(len(keys), dtype=bool)
        # Every training pair has a first-seen day; a missing one would count as seen at the reference day.
        first_seen = np.where(found, times.data[position] if len(times_keys) else reference_day, reference_day)
        ages = np.maximum(reference_day - first_seen, 0.0).astype(np.float32)
        return sp.csr_matrix((ages, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)

    @cached_property
    def _times_keys(self) -> np.ndarray:
        """The sorted keys of `times`' entries, the lookup `ages` searches."""
        self.times.sort_indices()
        return _pair_keys(self.times)

    def protocol(self, name: str) -> ProtocolData:
        """The matrices of evaluation protocol `name` (`per_user` or `global_cut`)."""
        end, days = self.counts.end_day, self.counts.cut_days
        if name == PER_USER:
            fit, validation, train, holdout = self.fit, self.validation, self.train, self.holdout
            cold = self.holdout_cold
            fit_end = train_end = end
        elif name == GLOBAL_CUT:
            fit, validation, train, holdout = self.cut_fit, self.cut_validation, self.cut_train, self.cut_holdout
            cold = self.cut_holdout_cold
            fit_end, train_end = end - 2 * days, end - days
        else:
            raise ValueError(f"unknown protocol {name!r}; expected one of {PROTOCOLS}")
        return ProtocolData(
            name=name,
            fit=fit,
            validation=validation,
            train=train,
            holdout=holdout,
            age_at=self.ages,
            fit_end=fit_end,
            train_end=train_end,
            cold_holdout=cold,
        )

    def full_ages(self) -> sp.csr_matrix:
        """Age in days, at the end of the window, of every entry of `full`."""
        return self.ages(self.full, self.counts.end_day)

    @property
    def summary(self) -> TrainingSetSummary:
        """The summary a loaded set was written with (`build_training_set` results have counts only)."""
        if not isinstance(self.counts, TrainingSetSummary):
            raise AttributeError("this training set was built in memory and has no window summary yet")
        return self.counts


def cut_too_long(counts: SplitCounts) -> str | None:
    """Why the global time cut leaves a split empty (one line naming the setting and the numbers), or None.

    The cut needs data before `2 x cut_days` days from the end (to fit on), the `cut_days` before
    that (to validate on) and the last `cut_days` (to hold out).
    """
    empty = [
        name
        for name, pairs in (
            ("fit", counts.cut_fit_pairs),
            ("validation", counts.cut_validation_pairs),
            ("holdout", counts.cut_holdout_pairs),
        )
        if pairs == 0
    ]
    if not empty:
        return None
    days = max(round(counts.end_day - counts.first_day), 0)
    return (
        f"training_set.cut_days={counts.cut_days} is too long for {days} days of data: the global time cut holds "
        f"out the last {counts.cut_days} days, validates on the {counts.cut_days} before them and fits on what is "
        f"earlier, which needs more than {2 * counts.cut_days} days; empty: {', '.join(empty)} "
        f"({counts.cut_fit_pairs:,} fit, {counts.cut_validation_pairs:,} validation, "
        f"{counts.cut_holdout_pairs:,} holdout pairs). Lower training_set.cut_days to at most {max((days - 1) // 2, 0)} "
        "or widen RECSYS_TRAINING_WINDOW_DAYS"
    )


def content_hash(files: Mapping[str, bytes]) -> str:
    """A hash of the training data that changes exactly when the data does (file names without folders)."""
    digest = hashlib.sha256()
    for uri in sorted(files, key=lambda uri: uri.rsplit("/", 1)[-1]):
        name = uri.rsplit("/", 1)[-1]
        digest.update(name.encode())
        digest.update(hashlib.sha256(files[uri]).digest())
    return digest.hexdigest()


def build_training_set(
    events: pa.Table, params: SplitParams, catalogue_ids: pa.Array | pa.ChunkedArray | None = None
) -> TrainingSet:
    """Deduplicate, weight, filter and split `events` (the interactions contract) per user by time.

    Items of `catalogue_ids` that occur only in a holdout stay in the item index (content models
    can score them from their features); their held-out pairs form the `*_cold` matrices.
    """
    # Spill to disk rather than grow: at 30 M events the hash tables of the deduplication and the
    # split would otherwise hold several GiB beside the events and the matrices.
    spill = tempfile.TemporaryDirectory(prefix="recsys-split-")
    con = duckdb.connect(config={"memory_limit": DUCKDB_MEMORY_LIMIT, "temp_directory": spill.name})
    try:
        return _build(con, events, params, catalogue_ids)
    finally:
        con.close()
        spill.cleanup()


def _build(
    con: duckdb.DuckDBPyConnection,
    events: pa.Table,
    params: SplitParams,
    catalogue_ids: pa.Array | pa.ChunkedArray | None,
) -> TrainingSet:
    """`build_training_set` on an open DuckDB connection."""
    con.register("events", events)
    catalogue = pa.array([], pa.string()) if catalogue_ids is None else catalogue_ids
    con.register("catalogue", pa.table({"item_id": cast(pa.Array, catalogue)}))
    con.register(
        "type_weights",
        pa.table(
            {"event_type": list(params.event_type_weights), "type_weight": list(params.event_type_weights.values())}
        ),
    )
    # Holdout: each user's most recent distinct items (by first interaction); validation: the
    # most recent of what remains, used only for hyperparameter search. Users keep at least one
    # training item because min_user_items >= 2 and both fractions round down.
    # The global cut: holdout = pairs first seen in the last `cut_days` days, validation = the
    # `cut_days` before that, fit = everything earlier (end = midnight after the last event).
    end_day = float(
        con.sql(f"SELECT coalesce(floor(max(epoch(event_ts)) / {DAY_SECONDS}) + 1, 0) FROM events").fetchall()[0][0]
    )
    cut, validation_cut = end_day - params.cut_days, end_day - 2 * params.cut_days
    # Counted on its own: beside the split's query its hash table would add to the peak.
    events_deduplicated = int(con.sql("SELECT count(*) FROM (SELECT DISTINCT * FROM events)").fetchall()[0][0])
    # Splits are coded FIT/VALIDATION/HOLDOUT (TINYINT): strings would become Python objects per pair.
    con.execute(
        f"""
        CREATE TEMP TABLE pairs AS
        WITH deduped AS (SELECT DISTINCT user_id, item_id, event_type, weight, event_ts FROM events),
        weighted AS (
            SELECT user_id, item_id, event_ts,
                   weight * coalesce(type_weight, {float(params.default_event_weight)!r}) AS confidence
            FROM deduped LEFT JOIN type_weights USING (event_type)),
        pairs AS (
            SELECT user_id, item_id, sum(confidence) AS confidence, min(event_ts) AS first_ts
            FROM weighted GROUP BY user_id, item_id HAVING sum(confidence) > 0),
        items_ok AS (SELECT item_id FROM pairs GROUP BY item_id HAVING count(*) >= {int(params.min_item_users)}),
        item_filtered AS (SELECT * FROM pairs SEMI JOIN items_ok USING (item_id)),
        users_ok AS (SELECT user_id FROM item_filtered GROUP BY user_id HAVING count(*) >= {int(params.min_user_items)}),
        kept AS (SELECT * FROM item_filtered SEMI JOIN users_ok USING (user_id)),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY first_ts DESC, item_id) AS recency,
                      count(*) OVER (PARTITION BY user_id) AS n
            FROM kept),
        split AS (
            SELECT *, greatest(1, floor(n * {float(params.holdout_fraction)!r}))::BIGINT AS n_holdout FROM ranked)
        SELECT user_id, item_id, confidence::FLOAT AS confidence,
               epoch(first_ts) / {DAY_SECONDS} AS first_day,
               (CASE WHEN epoch(first_ts) / {DAY_SECONDS} >= {cut!r} THEN {HOLDOUT}
                    WHEN epoch(first_ts) / {DAY_SECONDS} >= {validation_cut!r} THEN {VALIDATION}
                    ELSE {FIT} END)::TINYINT AS cut_split,
               (CASE WHEN recency <= n_holdout THEN {HOLDOUT}
                    WHEN recency <= n_holdout + greatest(1, floor((n - n_holdout) * {float(params.validation_fraction)!r}))
                         AND n - n_holdout >= 2 THEN {VALIDATION}
                    ELSE {FIT} END)::TINYINT AS split
        FROM split
        """
    )
    pairs_kept, holdout_pairs_all, cut_holdout_pairs_all = con.sql(
        f"SELECT count(*), count(*) FILTER (split = {HOLDOUT}), count(*) FILTER (cut_split = {HOLDOUT}) FROM pairs"
    ).fetchall()[0]
    users = con.sql(
        f"SELECT DISTINCT user_id FROM pairs WHERE split <> {HOLDOUT} OR cut_split <> {HOLDOUT} ORDER BY user_id"
    ).to_arrow_table()["user_id"]
    items = con.sql(
        f"SELECT DISTINCT item_id FROM pairs WHERE split <> {HOLDOUT} OR cut_split <> {HOLDOUT} "
        "OR item_id IN (SELECT item_id FROM catalogue) ORDER BY item_id"
    ).to_arrow_table()["item_id"]
    con.register("users", pa.table({"user_id": users, "u": pa.array(np.arange(len(users), dtype=np.int32))}))
    con.register("items", pa.table({"item_id": items, "i": pa.array(np.arange(len(items), dtype=np.int32))}))
    # Holdout pairs whose item never occurs in training cannot be recommended by any model; they
    # are dropped and counted rather than silently scored as misses.
    indexed = con.sql(
        "SELECT u, i, confidence, first_day, split, cut_split FROM pairs JOIN users USING (user_id) JOIN items USING (item_id)"
    ).to_arrow_table()
    con.execute("DROP TABLE pairs")
    shape = (len(users), len(items))
    u = indexed["u"].to_numpy()
    i = indexed["i"].to_numpy()
    conf = indexed["confidence"].to_numpy()
    split = indexed["split"].to_numpy()
    cut_split = indexed["cut_split"].to_numpy()
    first_day = indexed["first_day"].to_numpy()

    def matrix(mask: np.ndarray, values: np.ndarray | None = None) -> sp.csr_matrix:
        data = conf[mask] if values is None else values[mask]
        return sp.csr_matrix((data.astype(np.float32), (u[mask], i[mask])), shape=shape)

    is_fit, is_val, is_hold = split == FIT, split == VALIDATION, split == HOLDOUT
    ones = np.ones_like(conf)
    train = matrix(is_fit | is_val)
    # The index holds what either protocol trains on: keep only held-out items this protocol trained on.
    trained = np.bincount(train.indices, minlength=shape[1]) > 0
    holdout = matrix(is_hold & trained[i], ones)
    holdout_cold = matrix(is_hold & ~trained[i], ones)
    cut_is_fit, cut_is_val = cut_split == FIT, cut_split == VALIDATION
    cut_train, cut_fit = matrix(cut_is_fit | cut_is_val), matrix(cut_is_fit)
    # After the cut only users and items with history before it can be scored; the rest is counted as cold.
    warm_user = np.diff(cut_train.indptr) > 0
    warm_item = np.bincount(cut_train.indices, minlength=shape[1]) > 0
    cut_hold = cut_split == HOLDOUT
    cut_warm = cut_hold & warm_user[u] & warm_item[i]
    cut_holdout = matrix(cut_warm, ones)
    cut_holdout_cold = matrix(cut_hold & warm_user[u] & ~warm_item[i], ones)
    cut_validation = matrix(cut_is_val & (np.diff(cut_fit.indptr) > 0)[u], ones)
    return TrainingSet(
        full=matrix(np.ones(u.size, dtype=bool)),
        train=train,
        fit=matrix(is_fit),
        validation=matrix(is_val, ones),
        holdout=holdout,
        cut_train=cut_train,
        cut_fit=cut_fit,
        cut_validation=cut_validation,
        cut_holdout=cut_holdout,
        # A pair first seen at the epoch would be a stored zero: day 0 never occurs in real data.
        times=sp.csr_matrix((first_day.astype(np.float64), (u, i)), shape=shape),
        holdout_cold=holdout_cold,
        cut_holdout_cold=cut_holdout_cold,
        user_ids=users.combine_chunks(),
        item_ids=items.combine_chunks(),
        counts=SplitCounts(
            events=events.num_rows,
            events_deduplicated=events_deduplicated,
            pairs_kept=int(pairs_kept),
            users=shape[0],
            items=shape[1],
            train_pairs=int(train.nnz),
            full_pairs=int(u.size),
            holdout_pairs=int(holdout.nnz),
            holdout_pairs_unknown_item=int(holdout_pairs_all) - int(holdout.nnz),
            holdout_users=int((np.diff(holdout.indptr) > 0).sum()),
            density=float(train.nnz) / max(shape[0] * shape[1], 1),
            end_day=end_day,
            cut_days=params.cut_days,
            first_day=float(np.floor(first_day.min())) if first_day.size else end_day,
            cut_train_pairs=int(cut_train.nnz),
            cut_fit_pairs=int(cut_fit.nnz),
            cut_validation_pairs=int(cut_validation.nnz),
            cut_holdout_pairs=int(cut_holdout.nnz),
            cut_holdout_users=int((np.diff(cut_holdout.indptr) > 0).sum()),
            cut_holdout_pairs_cold=int(cut_holdout_pairs_all) - int(cut_holdout.nnz),
            holdout_pairs_cold_item=int(holdout_cold.nnz),
            cut_holdout_pairs_cold_item=int(cut_holdout_cold.nnz),
        ),
    )
