"""Data-quality arithmetic of a daily extract: which rows are malformed, and how each day fares.

Everything is one vectorised pass over epoch-day numbers, so a multi-day backfill run is judged
per day without a Python loop over rows.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
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
class ExtractSplit:
    """An extract's rows classified: valid rows per day, and the rejected ones with their reasons."""

    valid: pa.Table
    rejected: pa.Table
    rows_per_day: dict[str, int]
    day_bounds: list[tuple[str, int, int]]
    days: list[DayQuality]  # one per partition day, in order: each day is judged on its own
    rows_outside: int
    rows_read: int

    @property
    def share_outside(self) -> float:
        return self.rows_outside / max(self.rows_read, 1)


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
    """Classify `table` against the days `keys` and write one Parquet file per day (rejected rows beside the last).

    One write per day replaces the whole partition, so writing the same days again is idempotent.
    """
    split = split_extract(table, keys)
    storage.write_tables(
        {layout.interactions(key).events: split.valid.slice(lo, hi - lo) for key, lo, hi in split.day_bounds}
    )
    if split.rejected.num_rows:
        # Quarantined, not dropped: the rows stay inspectable next to the extract.
        storage.write_bytes(layout.interactions(keys[-1]).rejected, storage.table_to_bytes(split.rejected))
    return split


# Days read from the warehouse per query when training_set extracts missing window days: ~1 M events
# (a few hundred MiB) at 300 k events a day, so it never holds a long run of days at once.
EXTRACT_DAYS_PER_READ = 4


def chunks(keys: Sequence[str], size: int = EXTRACT_DAYS_PER_READ) -> list[list[str]]:
    """`keys` (consecutive days) in runs of at most `size`."""
    return [list(keys[i : i + size]) for i in range(0, len(keys), size)]


def consecutive_runs(keys: Sequence[str]) -> list[list[str]]:
    """Sorted partition keys grouped into runs of consecutive days (one warehouse read per run)."""
    runs: list[list[str]] = []
    for key in sorted(keys):
        if runs and date.fromisoformat(runs[-1][-1]) + timedelta(days=1) == date.fromisoformat(key):
            runs[-1].append(key)
        else:
            runs.append([key])
    return runs
