"""Data-quality arithmetic of a daily extract: which rows are malformed, and how each day fares.

Everything is one vectorised pass over epoch-day numbers, so a multi-day backfill run is judged
per day without a Python loop over rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.domain import storage
from recsys_assets.domain.events import bad_weights, day_of, filled_numpy
from recsys_assets.domain.layout import ArtifactLayout
from recsys_assets.domain.text_files import blank_ids

EPOCH = date(1970, 1, 1)


def epoch_day(key: str) -> int:
    """Days since 1970-01-01 of a YYYY-MM-DD partition key."""
    return (date.fromisoformat(key) - EPOCH).days


@dataclass(frozen=True)
class DayQuality:
    """One partition day of an extract: its rows read (inside the day) and how many of them are malformed."""

    day: str
    rows: int
    null_ids: int
    bad_weights: int

    def share(self, malformed: int) -> float:
        return malformed / max(self.rows, 1)


@dataclass(frozen=True)
class ExtractCounts:
    """An extract's numbers without its rows: what each day's checks and metadata need, for any number of reads."""

    rows_per_day: dict[str, int]
    days: list[DayQuality]  # one per partition day, in order: each day is judged on its own
    rows_outside: int
    rows_read: int
    rows_rejected: int

    @property
    def share_outside(self) -> float:
        return self.rows_outside / max(self.rows_read, 1)


@dataclass(frozen=True)
class ExtractSplit(ExtractCounts):
    """An extract's rows classified: valid rows per day, and the rejected ones with their reasons."""

    valid: pa.Table
    rejected: pa.Table
    day_bounds: list[tuple[str, int, int]]

    def counts(self) -> ExtractCounts:
        """The numbers alone, so the rows can be let go."""
        return ExtractCounts(self.rows_per_day, self.days, self.rows_outside, self.rows_read, self.rows_rejected)


def _per_day(flags: np.ndarray, day_index: np.ndarray, in_range: np.ndarray, days: int) -> np.ndarray:
    """How many rows of each partition day have `flags` set."""
    return np.bincount(day_index[in_range & flags], minlength=days)


def split_extract(table: pa.Table, keys: Sequence[str]) -> ExtractSplit:
    """Classify every row of `table` (the events contract) against the partition days `keys`.

    A row is rejected when an id is null or blank (`text_files.blank_ids`), its weight is missing, negative, not finite
    or absurd, or its day is not one of `keys`. Each day is counted on its own: one broken day must not hide inside a
    multi-day run.
    """
    row_days = filled_numpy(day_of(table["event_ts"]).cast(pa.int32()), -1)
    key_days = np.array([epoch_day(k) for k in keys])
    null_ids = filled_numpy(pc.or_kleene(blank_ids(table["user_id"]), blank_ids(table["item_id"])), True)
    bad_weight = bad_weights(table["weight"])
    # Each row's position among the sorted partition days; it is outside when that day is not its own.
    day_index = np.searchsorted(key_days, row_days)
    if len(key_days):
        outside = key_days[np.minimum(day_index, len(key_days) - 1)] != row_days
    else:
        outside = np.ones(len(row_days), dtype=bool)
    rejected = null_ids | outside | bad_weight

    kept_days = row_days[~rejected]
    # Warehouses return rows in time order: filtering and re-sorting 30 M rows would copy the table twice.
    valid = table.filter(pa.array(~rejected)) if rejected.any() else table
    if kept_days.size and np.any(np.diff(kept_days) < 0):
        order = np.argsort(kept_days, kind="stable")
        valid, kept_days = valid.take(order), kept_days[order]
    valid_days = kept_days
    lows = np.searchsorted(valid_days, key_days, "left")
    highs = np.searchsorted(valid_days, key_days, "right")
    bounds = [(key, int(lo), int(hi)) for key, lo, hi in zip(keys, lows, highs, strict=True)]

    return ExtractSplit(
        valid=valid,
        rejected=table.filter(pa.array(rejected)),
        rows_per_day={key: hi - lo for key, lo, hi in bounds},
        day_bounds=bounds,
        days=[
            DayQuality(key, int(rows), int(nulls), int(weights))
            for key, rows, nulls, weights in zip(
                keys,
                _per_day(np.ones(len(row_days), dtype=bool), day_index, ~outside, len(keys)),
                _per_day(null_ids, day_index, ~outside, len(keys)),
                _per_day(bad_weight, day_index, ~outside, len(keys)),
                strict=True,
            )
        ],
        rows_outside=int(outside.sum()),
        rows_read=table.num_rows,
        rows_rejected=int(rejected.sum()),
    )


def median_rows(previous_counts: Sequence[int]) -> float | None:
    """The row-count baseline: the median of the previous days' counts (None without history)."""
    return statistics.median(previous_counts) if previous_counts else None


def baselines(known: dict[str, int], rows_per_day: dict[str, int], history_days: int) -> dict[str, float | None]:
    """Each day's row-count baseline: the median of the `history_days` days before it that have a count.

    `known` holds days extracted earlier (their file footers); a range's own earlier days count too,
    so every day of a range is judged as it would have been extracted alone, day after day.
    """
    counts = {**known, **rows_per_day}
    result = {}
    for key in rows_per_day:  # one entry per day, not per row
        first = date.fromisoformat(key)
        before = [(first - timedelta(days=back)).isoformat() for back in range(1, history_days + 1)]
        result[key] = median_rows([counts[day] for day in before if day in counts])
    return result


def collapsed_days(rows_per_day: dict[str, int], baseline: float | None, collapse_ratio: float) -> list[str]:
    """Days that are empty or have fewer than `collapse_ratio` x the `baseline` rows."""
    return [k for k, n in rows_per_day.items() if n == 0 or (baseline and n < collapse_ratio * baseline)]


def store_extract(layout: ArtifactLayout, table: pa.Table, keys: Sequence[str]) -> ExtractSplit:
    """Classify `table` against the days `keys` and write one Parquet file per day (the rejected rows are the caller's).

    One write per day replaces the whole partition, so writing the same days again is idempotent.
    """
    split = split_extract(table, keys)
    storage.write_tables(
        {layout.interactions(key).events: split.valid.slice(lo, hi - lo) for key, lo, hi in split.day_bounds}
    )
    return split


def store_extracts(
    layout: ArtifactLayout,
    reads: Iterable[tuple[list[str], pa.Table]],
    each: Callable[[ExtractSplit], None] | None = None,
) -> ExtractCounts:
    """Classify and write every read's days (`store_extract`), holding one read's rows at a time.

    `reads` yields each read's days and rows (`Warehouse.read_days`); `each` sees every read's split
    while its rows are held. Only the numbers stay, so a range's days are judged exactly as one read
    of the whole range would judge them. The rejected rows of all reads are written once, beside the
    range's last day (quarantined, not dropped: they stay inspectable next to the extract).
    """
    parts: list[ExtractCounts] = []
    rejected: list[pa.Table] = []
    last = ""
    for days, table in reads:
        split = store_extract(layout, table, days)
        if each is not None:
            each(split)
        parts.append(split.counts())
        if split.rows_rejected:
            rejected.append(split.rejected)
        last = days[-1]
        # The next read must not sit beside this one's rows.
        del split, table
    if rejected:
        storage.write_bytes(layout.interactions(last).rejected, storage.table_to_bytes(pa.concat_tables(rejected)))
    return ExtractCounts(
        rows_per_day={key: rows for part in parts for key, rows in part.rows_per_day.items()},
        days=[day for part in parts for day in part.days],
        rows_outside=sum(part.rows_outside for part in parts),
        rows_read=sum(part.rows_read for part in parts),
        rows_rejected=sum(part.rows_rejected for part in parts),
    )


# Rows read from the warehouse at once when extracting a range of days (whole days: a larger day is
# read alone): about 0.1 GiB of Arrow and a few times that while it is classified and written, so a
# first run's 100-day backfill holds a few days at 300 k events a day and one at 1 M.
EXTRACT_ROWS_PER_READ = 1_000_000


def reads_of(keys: Sequence[str], rows_of_day: Mapping[str, int], rows_per_read: int) -> list[list[str]]:
    """`keys` in runs of consecutive days, each of at most `rows_per_read` rows by `rows_of_day` (or one day)."""
    reads: list[list[str]] = []
    for run in consecutive_runs(keys):
        reads.append([])
        held = 0
        for key in run:  # one step per day, not per row
            rows = rows_of_day.get(key, 0)
            if reads[-1] and held + rows > rows_per_read:
                reads.append([])
                held = 0
            reads[-1].append(key)
            held += rows
    return reads


def consecutive_runs(keys: Sequence[str]) -> list[list[str]]:
    """Sorted partition keys grouped into runs of consecutive days (one warehouse read per run)."""
    runs: list[list[str]] = []
    for key in sorted(keys):
        if runs and date.fromisoformat(runs[-1][-1]) + timedelta(days=1) == date.fromisoformat(key):
            runs[-1].append(key)
        else:
            runs.append([key])
    return runs
