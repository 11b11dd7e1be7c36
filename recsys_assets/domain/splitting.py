"""Turn a window of interaction events into the user x item training matrices and one split per evaluation protocol.

Two stages, so the relational part can run wherever the data is:

1. **Pairs** (`_pairs`, SQL on DuckDB): deduplicate, weight, apply the activity minimums, keep each
   pair's first-seen day and label it FIT / VALIDATION / HOLDOUT under every protocol (each protocol
   contributes one SQL expression), then index users and items.
2. **Splits** (NumPy/SciPy): each protocol's function turns its labels into a `ProtocolSplit` (fit,
   validation, train, holdout and cold-item holdout matrices, with counts).

`PROTOCOLS` is the one table of protocols: adding one is a label expression, a split function and
an entry here (and its name in `params.Protocol`, which a test keeps in step).
"""

from __future__ import annotations

import hashlib
import json
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
from recsys_assets.domain.layout import PROTOCOL_MATRICES, TrainingSetFiles
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.records import ProtocolCounts, SplitCounts, TrainingSetSummary

PER_USER = "per_user"
GLOBAL_CUT = "global_cut"
DAY_SECONDS = 86_400
# Split codes of a pair under each protocol: TINYINT columns, not strings (which would become Python objects per pair).
FIT, VALIDATION, HOLDOUT = 0, 1, 2
# DuckDB's working memory for the split; beyond it the query spills to a temporary folder.
DUCKDB_MEMORY_LIMIT = "2GB"
# The day (since the epoch, fractional) a pair was first seen, in the pairs query.
FIRST_DAY_SQL = f"epoch(first_ts) / {DAY_SECONDS}"
# The global cut widens in steps of cut_days up to this many times it, and while the holdout, the
# validation and the fit before them (3 x the cut) still fit in the data's span.
MAX_CUT_WIDENING = 4

# The age in days at a reference day of every entry of a matrix (`PairAges`).
AgeLookup = Callable[[sp.csr_matrix, float], sp.csr_matrix]


@dataclass(frozen=True)
class ProtocolSplit:
    """One evaluation protocol's split of the training set (LensKit's `TTSplit`, with a validation split).

    `fit`/`validation` tune hyperparameters; `train` (= fit + validation) trains the model that is
    scored on `holdout`; `cold_holdout` holds the held-out pairs of catalogue items `train` never saw
    (the cold-item evaluation). Ages are measured from the end of the data each matrix trains on, and
    are computed on first use: only fitting needs them, not the evaluation of fitted models (2 s at 10 M).
    """

    name: str
    fit: sp.csr_matrix
    validation: sp.csr_matrix
    train: sp.csr_matrix
    holdout: sp.csr_matrix
    cold_holdout: sp.csr_matrix
    # Where the data `fit` and `train` cover ends, in days since the epoch: their ages are measured from there.
    fit_end: float
    train_end: float
    counts: ProtocolCounts
    # Whether `fit_end`/`train_end` are one cut day for every user (a global time cut), at which closed
    # postings are left out of the candidates. A per-user holdout has no single day: each user's
    # held-out items are their own latest, so a posting closed before one user's holdout may be open at
    # another's, and that protocol compares models on the same, unfiltered catalogue.
    shared_cut: bool
    age_at: AgeLookup = field(repr=False)

    @property
    def fit_reference_day(self) -> float | None:
        """The day postings must still be open on to be candidates while searching on `fit`; None: any posting."""
        return self.fit_end if self.shared_cut else None

    @property
    def train_reference_day(self) -> float | None:
        """The day postings must still be open on to be candidates when scoring `holdout`; None: any posting."""
        return self.train_end if self.shared_cut else None

    @cached_property
    def fit_ages(self) -> sp.csr_matrix:
        return self.age_at(self.fit, self.fit_end)

    @cached_property
    def train_ages(self) -> sp.csr_matrix:
        return self.age_at(self.train, self.train_end)


@dataclass(frozen=True)
class Fold:
    """One rolling-origin validation fold: fitted on `fit` (with its ages), scored on `validation` (binary)."""

    fit: sp.csr_matrix
    fit_ages: sp.csr_matrix
    validation: sp.csr_matrix


def _entries(matrix: sp.csr_matrix, keep: np.ndarray, data: np.ndarray | None = None) -> sp.csr_matrix:
    """The stored entries of `matrix` where `keep` holds (in storage order), with `data` instead of its own."""
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    values = (matrix.data if data is None else data)[keep]
    return sp.csr_matrix((values, (rows[keep], matrix.indices[keep])), shape=matrix.shape)


def rolling_folds(split: ProtocolSplit, count: int, validation_fraction: float) -> list[Fold]:
    """`count` time-ordered validation folds, newest first: fold 0 is the split's own fit/validation, each
    next one validates on the newest block of the previous fold's fit and fits on what precedes it.

    The block is the same shape as the split's validation: after a global cut, the last
    `train_end - fit_end` days of the fit (ages measured from each fold's own end); per user, each
    user's newest `validation_fraction` of their fit items (at least one, for users with two or more).
    Validation pairs of users with no fit history left are dropped, as the split drops them.
    """
    folds = [Fold(split.fit, split.fit_ages, split.validation)]
    days = split.train_end - split.fit_end
    for _ in range(count - 1):
        fit, ages = folds[-1].fit, folds[-1].fit_ages
        age = ages.data.astype(np.float64)
        if split.shared_cut:
            newest = age < days
        else:
            rows = np.repeat(np.arange(fit.shape[0]), np.diff(fit.indptr))
            order = np.lexsort((age, rows))  # by user, newest first
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order)) - fit.indptr[rows[order]]
            per_user = np.diff(fit.indptr)
            block = np.where(per_user >= 2, np.maximum(1, np.floor(per_user * validation_fraction)), 0)
            newest = rank < block[rows]
        earlier = _entries(fit, ~newest)
        shift = days if split.shared_cut else 0.0
        earlier_ages = _entries(ages, ~newest, (age - shift).astype(np.float32))
        has_history = (np.diff(earlier.indptr) > 0).astype(np.float32)
        validation = _entries(fit, newest, np.ones(fit.nnz, dtype=np.float32))
        validation = sp.csr_matrix(sp.diags(has_history) @ validation)
        validation.eliminate_zeros()
        folds.append(Fold(earlier, earlier_ages, validation))
    return folds


def _pair_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """row * n_columns + column of every stored entry, in storage order (sorted when the indices are)."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return rows * matrix.shape[1] + matrix.indices


class PairAges:
    """The age in days at a reference day of any matrix's entries, looked up in `times` (first-seen days)."""

    def __init__(self, times: sp.csr_matrix) -> None:
        self.times = times

    @cached_property
    def _keys(self) -> np.ndarray:
        """The sorted keys of `times`' entries, the lookup `__call__` searches."""
        self.times.sort_indices()
        return _pair_keys(self.times)

    def __call__(self, matrix: sp.csr_matrix, reference_day: float) -> sp.csr_matrix:
        """Age in days at `reference_day` of every entry of `matrix`, in the same sparsity structure.

        A sorted-key lookup into `times` rather than sparse fancy indexing, which is slower and
        returns a matrix instead of values when `matrix` is empty.
        """
        times, times_keys = self.times, self._keys
        keys = _pair_keys(matrix)
        position = np.minimum(np.searchsorted(times_keys, keys), max(len(times_keys) - 1, 0))
        found = times_keys[position] == keys if len(times_keys) else np.zeros(len(keys), dtype=bool)
        # Every training pair has a first-seen day; a missing one would count as seen at the reference day.
        first_seen = np.where(found, times.data[position] if len(times_keys) else reference_day, reference_day)
        ages = np.maximum(reference_day - first_seen, 0.0).astype(np.float32)
        return sp.csr_matrix((ages, matrix.indices.copy(), matrix.indptr.copy()), shape=matrix.shape)


@dataclass
class TrainingSet:
    """The window's pairs on one user and one item index, and one split per evaluation protocol.

    `full` holds every pair of the window (every holdout included, with their confidences: what the
    served model is refitted on) and `times` the day (since the epoch, fractional) each pair was first seen.
    """

    full: sp.csr_matrix
    times: sp.csr_matrix
    user_ids: pa.Array
    item_ids: pa.Array
    protocols: dict[str, ProtocolSplit]
    counts: SplitCounts
    ages: AgeLookup = field(repr=False)

    def to_files(self, files: TrainingSetFiles) -> dict[str, bytes]:
        """Payload of every file of the set, keyed by its address in `files` (the summary excluded)."""
        payloads = {files.matrix(name): storage.sparse_to_bytes(getattr(self, name)) for name in files.names}
        for name, split in self.protocols.items():
            folder = files.protocol(name)
            payloads |= {folder.matrix(m): storage.sparse_to_bytes(getattr(split, m)) for m in PROTOCOL_MATRICES}
        payloads[files.user_ids] = storage.table_to_bytes(pa.table({"user_id": self.user_ids}))
        payloads[files.item_ids] = storage.table_to_bytes(pa.table({"item_id": self.item_ids}))
        return payloads

    @classmethod
    def load(cls, files: TrainingSetFiles) -> TrainingSet:
        """The training set written at `files`.

        Raises:
            ValueError: it was written by a version of this code without per-protocol splits.
        """
        raw = json.loads(storage.read_bytes(files.summary))
        if "protocols" not in raw:
            raise ValueError(
                f"the training set at {files.folder} was written before splits were stored per protocol: "
                "materialize training_set again"
            )
        summary = TrainingSetSummary.model_validate(raw)
        uris = [files.matrix("full"), files.matrix("times")]
        uris += [files.protocol(name).matrix(m) for name in summary.protocols for m in PROTOCOL_MATRICES]
        full, times, *matrices = storage.read_sparse(uris)
        ages = PairAges(times)
        protocols = {}
        for position, (name, counts) in enumerate(summary.protocols.items()):
            split = matrices[position * len(PROTOCOL_MATRICES) : (position + 1) * len(PROTOCOL_MATRICES)]
            protocols[name] = ProtocolSplit(
                name=name,
                **dict(zip(PROTOCOL_MATRICES, split, strict=True)),
                fit_end=counts.fit_end,
                train_end=counts.train_end,
                counts=counts,
                shared_cut=PROTOCOLS[name].shared_cut,
                age_at=ages,
            )
        return cls(
            full=full,
            times=times,
            user_ids=storage.table_from_bytes(storage.read_bytes(files.user_ids))["user_id"].combine_chunks(),
            item_ids=storage.table_from_bytes(storage.read_bytes(files.item_ids))["item_id"].combine_chunks(),
            protocols=protocols,
            counts=summary,
            ages=ages,
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


@dataclass(frozen=True)
class Pairs:
    """The window's user-item pairs on the training index: what every protocol's split is built from."""

    user: np.ndarray
    item: np.ndarray
    confidence: np.ndarray
    first_day: np.ndarray
    # Per protocol, each pair's FIT / VALIDATION / HOLDOUT code.
    labels: dict[str, np.ndarray]
    # Per protocol, the pairs it held out before the index was applied (the index drops pairs whose
    # item no protocol trains on and that the catalogue does not hold).
    held_out: dict[str, int]
    shape: tuple[int, int]
    end_day: float

    def matrix(self, mask: np.ndarray, ones: bool = False) -> sp.csr_matrix:
        """The pairs where `mask` holds, with their confidences (or ones: a holdout is binary)."""
        data = np.ones(int(mask.sum()), dtype=np.float32) if ones else self.confidence[mask].astype(np.float32)
        return sp.csr_matrix((data, (self.user[mask], self.item[mask])), shape=self.shape)


def _users_with(matrix: sp.csr_matrix) -> int:
    return int((np.diff(matrix.indptr) > 0).sum())


def _counts(split: dict[str, sp.csr_matrix], held_out: int, fit_end: float, train_end: float) -> ProtocolCounts:
    return ProtocolCounts(
        fit_pairs=int(split["fit"].nnz),
        validation_pairs=int(split["validation"].nnz),
        train_pairs=int(split["train"].nnz),
        holdout_pairs=int(split["holdout"].nnz),
        holdout_users=_users_with(split["holdout"]),
        unscored_holdout_pairs=held_out - int(split["holdout"].nnz),
        cold_item_pairs=int(split["cold_holdout"].nnz),
        fit_end=fit_end,
        train_end=train_end,
    )


def per_user_labels(params: SplitParams, end_day: float) -> str:
    """Each user's most recent distinct items (by first interaction) held out; the most recent of the rest validate.

    Users keep at least one training item because min_user_items >= 2 and both fractions round down.
    """
    n_holdout = f"greatest(1, floor(n * {float(params.holdout_fraction)!r}))::BIGINT"
    return f"""CASE WHEN recency <= {n_holdout} THEN {HOLDOUT}
                    WHEN recency <= {n_holdout} + greatest(1, floor((n - {n_holdout}) * {float(params.validation_fraction)!r}))
                         AND n - {n_holdout} >= 2 THEN {VALIDATION}
                    ELSE {FIT} END"""


def per_user_split(pairs: Pairs, params: SplitParams, ages: AgeLookup) -> ProtocolSplit:
    """The per-user temporal split: every user is scored on their own latest items, trained on the rest."""
    label = pairs.labels[PER_USER]
    is_fit, is_validation, is_holdout = label == FIT, label == VALIDATION, label == HOLDOUT
    train = pairs.matrix(is_fit | is_validation)
    # The index holds what any protocol trains on: keep only held-out items this protocol trained on.
    trained = np.bincount(train.indices, minlength=pairs.shape[1]) > 0
    split = {
        "fit": pairs.matrix(is_fit),
        "validation": pairs.matrix(is_validation, ones=True),
        "train": train,
        "holdout": pairs.matrix(is_holdout & trained[pairs.item], ones=True),
        "cold_holdout": pairs.matrix(is_holdout & ~trained[pairs.item], ones=True),
    }
    end = pairs.end_day
    counts = _counts(split, pairs.held_out[PER_USER], end, end)
    return ProtocolSplit(PER_USER, **split, fit_end=end, train_end=end, counts=counts, shared_cut=False, age_at=ages)


def widened_cut_sql(params: SplitParams, end_day: float) -> str:
    """SQL for the global cut's length in days: the shortest of cut_days x 1..MAX_CUT_WIDENING whose holdout
    has `min_holdout_users` users with history before it, else the longest that fits the data's span.

    A length fits when 3 x it (fit, validation and holdout) is within the span; cut_days itself always
    counts (a span too short for it is the split's problem, reported with its numbers). A user with
    history before day x and a pair after it is a user whose newest pair is after x minus one whose
    oldest is: two counts over each user's first and last ranked rows (`recency` 1 and `n`), no join.
    """
    cut = int(params.cut_days)
    lengths = " UNION ALL ".join(f"SELECT {cut * m} AS d" for m in range(1, MAX_CUT_WIDENING + 1))
    since = f"({FIRST_DAY_SQL}) >= {end_day!r} - lengths.d"
    counted = f"""SELECT lengths.d AS d,
                         sum(CASE WHEN recency = 1 AND {since} THEN 1 ELSE 0 END)
                         - sum(CASE WHEN recency = n AND {since} THEN 1 ELSE 0 END) AS users
                  FROM ranked CROSS JOIN ({lengths}) AS lengths
                  WHERE recency = 1 OR recency = n
                  GROUP BY lengths.d"""
    fits = f"3 * counted.d <= {end_day!r} - (SELECT floor(min({FIRST_DAY_SQL})) FROM ranked)"
    return f"""(SELECT coalesce(min(CASE WHEN counted.users >= {int(params.min_holdout_users)} THEN counted.d END),
                                max(counted.d), {cut})
               FROM ({counted}) AS counted WHERE {fits} OR counted.d = {cut})"""


def holdout_users_by_cut(user_first: np.ndarray, user_last: np.ndarray, end_day: float, days: np.ndarray) -> np.ndarray:
    """For each cut length in `days`, the users with history before the cut and a pair after it (the labels' rule)."""
    cut = end_day - days[:, None]
    return ((user_last[None, :] >= cut) & (user_first[None, :] < cut)).sum(axis=1)


def history_advice(user_first: np.ndarray, user_last: np.ndarray, params: SplitParams, window_days: int) -> list[str]:
    """What a history (each user's first and last day, since the epoch) fits: the window to train on and the cut.

    The cut is the shortest multiple of `cut_days` whose holdout has `min_holdout_users` users with
    history before it, keeping 3 x the cut within the history (fit, validation, holdout).
    """
    if not len(user_first):
        return []
    first, end = float(np.floor(user_first.min())), float(np.floor(user_last.max())) + 1
    span = round(end - first)
    lines = [f"history: {span} days, {len(user_first):,} users"]
    if window_days < span:
        lines.append(
            f"RECSYS_TRAINING_WINDOW_DAYS={window_days} trains on its last {window_days} days only: set "
            f"RECSYS_TRAINING_WINDOW_DAYS={span} to train on all of it"
        )
    else:
        lines.append(f"RECSYS_TRAINING_WINDOW_DAYS={window_days} covers all of it")
    lengths = params.cut_days * np.arange(1, max(span // (3 * params.cut_days), 1) + 1)
    users = holdout_users_by_cut(user_first, user_last, end, lengths)
    enough = np.flatnonzero(users >= params.min_holdout_users)
    if enough.size:
        days = int(lengths[enough[0]])
        lines.append(
            f"global cut: {days} days hold out about {int(users[enough[0]]):,} users with history before them "
            f"(training_set.min_holdout_users={params.min_holdout_users}); set training_set.cut_days={days} in a "
            f"run config (run --config FILE) over a window of at least {3 * days} days"
            if days > params.cut_days * MAX_CUT_WIDENING
            else f"global cut: {days} days hold out about {int(users[enough[0]]):,} users with history before them "
            f"(training_set.cut_days={params.cut_days} widens to it by itself over a window of at least {3 * days} days)"
        )
    else:
        best = int(np.argmax(users))
        lines.append(
            f"global cut: no cut up to {int(lengths[-1])} days (a third of the history) holds out "
            f"training_set.min_holdout_users={params.min_holdout_users} users with history before it (at most "
            f"{int(users[best]):,}, at {int(lengths[best])} days): its verdicts will be noisy; gate on per_user "
            "(trained_model.protocol) or lower training_set.min_holdout_users"
        )
    return lines


def global_cut_labels(params: SplitParams, end_day: float) -> str:
    """Pairs first seen in the cut's last days held out, as many days before them validate, the rest fit.

    The cut is `cut_days`, widened to hold out `min_holdout_users` (`widened_cut_sql`); the end is
    midnight after the last event.
    """
    days = widened_cut_sql(params, end_day)
    return f"""CASE WHEN {FIRST_DAY_SQL} >= {end_day!r} - {days} THEN {HOLDOUT}
                    WHEN {FIRST_DAY_SQL} >= {end_day!r} - 2 * {days} THEN {VALIDATION}
                    ELSE {FIT} END"""


def cut_length(pairs: Pairs, params: SplitParams) -> int:
    """The global cut's length in days as its labels drew it: the multiple of cut_days its earliest held-out pair is in."""
    held = pairs.first_day[pairs.labels[GLOBAL_CUT] == HOLDOUT]
    if not held.size:
        return params.cut_days
    steps = int(np.ceil((pairs.end_day - float(held.min())) / params.cut_days - 1e-9))
    return params.cut_days * max(steps, 1)


def global_cut_split(pairs: Pairs, params: SplitParams, ages: AgeLookup) -> ProtocolSplit:
    """The global time cut: trained before the cut's last days, scored on them (what deployment sees)."""
    label = pairs.labels[GLOBAL_CUT]
    is_fit, is_validation, is_holdout = label == FIT, label == VALIDATION, label == HOLDOUT
    train, fit = pairs.matrix(is_fit | is_validation), pairs.matrix(is_fit)
    # After the cut only users and items with history before it can be scored; the rest is counted as cold.
    warm_user = (np.diff(train.indptr) > 0)[pairs.user]
    warm_item = (np.bincount(train.indices, minlength=pairs.shape[1]) > 0)[pairs.item]
    split = {
        "fit": fit,
        "validation": pairs.matrix(is_validation & (np.diff(fit.indptr) > 0)[pairs.user], ones=True),
        "train": train,
        "holdout": pairs.matrix(is_holdout & warm_user & warm_item, ones=True),
        "cold_holdout": pairs.matrix(is_holdout & warm_user & ~warm_item, ones=True),
    }
    days = cut_length(pairs, params)
    fit_end, train_end = pairs.end_day - 2 * days, pairs.end_day - days
    counts = _counts(split, pairs.held_out[GLOBAL_CUT], fit_end, train_end).model_copy(update={"cut_days": days})
    return ProtocolSplit(
        GLOBAL_CUT, **split, fit_end=fit_end, train_end=train_end, counts=counts, shared_cut=True, age_at=ages
    )


def per_user_problem(counts: SplitCounts, params: SplitParams) -> str | None:
    """Why the per-user split leaves nothing to train or score on, or None."""
    split = counts.protocols[PER_USER]
    if split.train_pairs == 0 or split.holdout_users == 0:
        return (
            f"no trainable data after filtering ({counts.model_dump()}); widen RECSYS_TRAINING_WINDOW_DAYS or "
            "lower the activity minimums"
        )
    return None


def global_cut_problem(counts: SplitCounts, params: SplitParams) -> str | None:
    """Why the global time cut leaves a split empty (one line naming the setting and the numbers), or None.

    The cut needs data before `2 x cut_days` days from the end (to fit on), the `cut_days` before
    that (to validate on) and the last `cut_days` (to hold out).
    """
    split = counts.protocols[GLOBAL_CUT]
    pairs = {"fit": split.fit_pairs, "validation": split.validation_pairs, "holdout": split.holdout_pairs}
    empty = [name for name, n in pairs.items() if n == 0]
    if not empty:
        return None
    days, cut = max(round(counts.end_day - counts.first_day), 0), split.cut_days or params.cut_days
    return (
        f"training_set.cut_days={cut} is too long for {days} days of data: the global time cut holds "
        f"out the last {cut} days, validates on the {cut} before them and fits on what is "
        f"earlier, which needs more than {2 * cut} days; empty: {', '.join(empty)} "
        f"({pairs['fit']:,} fit, {pairs['validation']:,} validation, {pairs['holdout']:,} holdout pairs). "
        f"Lower training_set.cut_days to at most {max((days - 1) // 2, 0)} or widen RECSYS_TRAINING_WINDOW_DAYS"
    )


@dataclass(frozen=True)
class ProtocolDefinition:
    """An evaluation protocol: how pairs are labelled (SQL), split (NumPy), and checked for emptiness."""

    # (params, end day) -> a SQL expression over the pairs query's `ranked` rows (first_ts, recency and
    # n per user) giving each pair's FIT / VALIDATION / HOLDOUT code.
    labels: Callable[[SplitParams, float], str]
    split: Callable[[Pairs, SplitParams, AgeLookup], ProtocolSplit]
    problem: Callable[[SplitCounts, SplitParams], str | None]
    shared_cut: bool
    # What the protocol measures, for the model card and the release pull request.
    description: str
    # What its train split is, with `{pairs}`, `{window}`, `{cut}` (train end) and `{days}` (held-out days) filled in.
    train_text: str


# The evaluation protocols, in the order they are reported.
PROTOCOLS: dict[str, ProtocolDefinition] = {
    PER_USER: ProtocolDefinition(
        labels=per_user_labels,
        split=per_user_split,
        problem=per_user_problem,
        shared_cut=False,
        description="each user's most recent interactions held out (good for comparing models; it leaks the future)",
        train_text="per_user train split of {window}: {pairs:,} pairs, each user's most recent items held out "
        "(the model the per_user evaluation scored)",
    ),
    GLOBAL_CUT: ProtocolDefinition(
        labels=global_cut_labels,
        split=global_cut_split,
        problem=global_cut_problem,
        shared_cut=True,
        description="a global time cut: trained before the last days of the window, scored on those days "
        "(what deployment sees)",
        train_text="global_cut train split: {pairs:,} pairs first seen before {cut}, the last {days} days held out "
        "(the model the global_cut evaluation scored)",
    ),
}


def split_problem(counts: SplitCounts, params: SplitParams) -> str | None:
    """The first protocol's reason its split leaves nothing to train or score on (one line), or None."""
    return next((p for p in (d.problem(counts, params) for d in PROTOCOLS.values()) if p is not None), None)


def small_holdouts(counts: SplitCounts, params: SplitParams) -> list[str]:
    """One line per protocol whose holdout has fewer than `min_holdout_users` users, naming what to change."""
    lines = []
    days = max(round(counts.end_day - counts.first_day), 0)
    for name, split in counts.protocols.items():
        if split.holdout_users >= params.min_holdout_users:
            continue
        widened = (
            f" (the cut widened from {params.cut_days} to {split.cut_days} days)"
            if (split.cut_days and split.cut_days > params.cut_days)
            else ""
        )
        lines.append(
            f"{name}: the holdout has {split.holdout_users:,} users{widened}, fewer than "
            f"training_set.min_holdout_users={params.min_holdout_users} over {days} days of data: its verdicts "
            "are noisy (see each lift's interval); widen RECSYS_TRAINING_WINDOW_DAYS"
            + (" or raise training_set.cut_days" if split.cut_days else "")
            + " or lower training_set.min_holdout_users"
        )
    return lines


def content_hash(files: Mapping[str, bytes], folder: str) -> str:
    """A hash of the data in `files` (under `folder`) that changes exactly when the data does, wherever it is written."""
    digest = hashlib.sha256()
    prefix = folder.rstrip("/") + "/"
    for uri in sorted(files):
        if not uri.startswith(prefix):
            raise ValueError(f"{uri} is not under {folder}")
        digest.update(uri.removeprefix(prefix).encode())
        digest.update(hashlib.sha256(files[uri]).digest())
    return digest.hexdigest()


def build_training_set(
    events: pa.Table, params: SplitParams, catalogue_ids: pa.Array | pa.ChunkedArray | None = None
) -> TrainingSet:
    """Deduplicate, weight, filter and split `events` (the interactions contract) under every protocol.

    Items of `catalogue_ids` that occur only in a holdout stay in the item index (content models
    can score them from their features); their held-out pairs form each split's `cold_holdout`.
    """
    # Spill to disk rather than grow: at 30 M events the hash tables of the deduplication and the
    # split would otherwise hold several GiB beside the events and the matrices.
    spill = tempfile.TemporaryDirectory(prefix="recsys-split-")
    con = duckdb.connect(config={"memory_limit": DUCKDB_MEMORY_LIMIT, "temp_directory": spill.name})
    try:
        pairs, users, items, window = _pairs(con, events, params, catalogue_ids)
    finally:
        con.close()
        spill.cleanup()
    times = sp.csr_matrix((pairs.first_day.astype(np.float64), (pairs.user, pairs.item)), shape=pairs.shape)
    ages = PairAges(times)
    protocols = {name: definition.split(pairs, params, ages) for name, definition in PROTOCOLS.items()}
    first_day = pairs.first_day
    return TrainingSet(
        full=pairs.matrix(np.ones(pairs.user.size, dtype=bool)),
        # A pair first seen at the epoch would be a stored zero: day 0 never occurs in real data.
        times=times,
        user_ids=users,
        item_ids=items,
        protocols=protocols,
        counts=SplitCounts(
            **window,
            users=pairs.shape[0],
            items=pairs.shape[1],
            full_pairs=int(pairs.user.size),
            end_day=pairs.end_day,
            first_day=float(np.floor(first_day.min())) if first_day.size else pairs.end_day,
            protocols={name: split.counts for name, split in protocols.items()},
        ),
        ages=ages,
    )


def _pairs(
    con: duckdb.DuckDBPyConnection,
    events: pa.Table,
    params: SplitParams,
    catalogue_ids: pa.Array | pa.ChunkedArray | None,
) -> tuple[Pairs, pa.Array, pa.Array, dict[str, int]]:
    """The labelled pairs on the index, the user and item ids of the index, and the window's event counts."""
    con.register("events", events)
    catalogue = pa.array([], pa.string()) if catalogue_ids is None else catalogue_ids
    con.register("catalogue", pa.table({"item_id": cast(pa.Array, catalogue)}))
    con.register(
        "type_weights",
        pa.table(
            {"event_type": list(params.event_type_weights), "type_weight": list(params.event_type_weights.values())}
        ),
    )
    end_day = float(
        con.sql(f"SELECT coalesce(floor(max(epoch(event_ts)) / {DAY_SECONDS}) + 1, 0) FROM events").fetchall()[0][0]
    )
    # Counted on its own: beside the split's query its hash table would add to the peak.
    events_deduplicated = int(con.sql("SELECT count(*) FROM (SELECT DISTINCT * FROM events)").fetchall()[0][0])
    # Protocol names are this module's constants, never input: safe as column names.
    labels = ",\n               ".join(
        f"({definition.labels(params, end_day)})::TINYINT AS {name}" for name, definition in PROTOCOLS.items()
    )
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
            FROM kept)
        SELECT user_id, item_id, confidence::FLOAT AS confidence,
               {FIRST_DAY_SQL} AS first_day,
               {labels}
        FROM ranked
        """
    )
    held_out = ", ".join(f"count(*) FILTER ({name} = {HOLDOUT})" for name in PROTOCOLS)
    pairs_kept, *held = con.sql(f"SELECT count(*), {held_out} FROM pairs").fetchall()[0]
    # The index holds every user and item some protocol trains on, and the catalogue's items.
    trained_somewhere = " OR ".join(f"{name} <> {HOLDOUT}" for name in PROTOCOLS)
    users = con.sql(f"SELECT DISTINCT user_id FROM pairs WHERE {trained_somewhere} ORDER BY user_id").to_arrow_table()[
        "user_id"
    ]
    items = con.sql(
        f"SELECT DISTINCT item_id FROM pairs WHERE {trained_somewhere} "
        "OR item_id IN (SELECT item_id FROM catalogue) ORDER BY item_id"
    ).to_arrow_table()["item_id"]
    con.register("users", pa.table({"user_id": users, "u": pa.array(np.arange(len(users), dtype=np.int32))}))
    con.register("items", pa.table({"item_id": items, "i": pa.array(np.arange(len(items), dtype=np.int32))}))
    # Held-out pairs whose item never occurs in training cannot be recommended by any model; they
    # are dropped and counted rather than silently scored as misses.
    indexed = con.sql(
        f"SELECT u, i, confidence, first_day, {', '.join(PROTOCOLS)} FROM pairs "
        "JOIN users USING (user_id) JOIN items USING (item_id)"
    ).to_arrow_table()
    con.execute("DROP TABLE pairs")
    pairs = Pairs(
        user=indexed["u"].to_numpy(),
        item=indexed["i"].to_numpy(),
        confidence=indexed["confidence"].to_numpy(),
        first_day=indexed["first_day"].to_numpy(),
        labels={name: indexed[name].to_numpy() for name in PROTOCOLS},
        held_out={name: int(n) for name, n in zip(PROTOCOLS, held, strict=True)},
        shape=(len(users), len(items)),
        end_day=end_day,
    )
    window = {"events": events.num_rows, "events_deduplicated": events_deduplicated, "pairs_kept": int(pairs_kept)}
    return pairs, users.combine_chunks(), items.combine_chunks(), window
