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
class DayShare:
    """The worst day of one kind of malformed row."""

    rows: int
    worst_day: str
    worst_rows: int
    worst_day_rows: int

    @property
    def worst_share(self) -> float:
        return self.worst_rows / max(self.worst_day_rows, 1)


@dataclass(frozen=True)
class ExtractSplit:
    """An extract's rows classified: valid rows per day, and the rejected ones with their reasons."""

    valid: pa.Table
    rejected: pa.Table
    rows_per_day: dict[str, int]
    day_bounds: list[tuple[str, int, int]]
    null_ids: DayShare
    bad_weights: DayShare
    rows_outside: int
    rows_read: int

    @property
    def share_outside(self) -> float:
        return self.rows_outside / max(self.rows_read, 1)


def _worst(flags: np.ndarray, day_index: np.ndarray, in_range: np.ndarray, keys: Sequence[str]) -> DayShare:
    rows_in_day = np.bincount(day_index[in_range], minlength=len(keys))
    per_day = np.bincount(day_index[in_range & flags], minlength=len(keys))
    shares = per_day / np.maximum(rows_in_day, 1)
    worst = int(np.argmax(shares)) if len(keys) else 0
    return DayShare(
        rows=int(per_day.sum()),
        worst_day=keys[worst],
        worst_rows=int(per_day[worst]),
        worst_day_rows=int(rows_in_day[worst]),
    )


def split_extract(table: pa.Table, keys: Sequence[str]) -> ExtractSplit:
    """Classify every row of `table` (the events contract) against the partition days `keys`.

    A row is rejected when an id is null or blank (`text_files.blank_ids`), its weight is missing, negative, not finite or absurd, or its day is not one
    of `keys`. Shares are judged per day: one broken day must not hide inside a multi-day run.
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
        null_ids=_worst(null_ids, day_index, ~outside, keys),
        bad_weights=_worst(bad_weight, day_index, ~outside, keys),
        rows_outside=int(outside.sum()),
        rows_read=table.num_rows,
    )


def median_rows(previous_counts: Sequence[int]) -> float | None:
    """The row-count baseline: the median of the previous days' counts (None without history)."""
    return statistics.median(previous_counts) if previous_counts else None


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


def consecutive_runs(keys: Sequence[str]) -> list[list[str]]:
    """Sorted partition keys grouped into runs of consecutive days (one warehouse read per run)."""
    runs: list[list[str]] = []
    for key in sorted(keys):
        if runs and date.fromisoformat(runs[-1][-1]) + timedelta(days=1) == date.fromisoformat(key):
            runs[-1].append(key)
        else:
            runs.append([key])
    return runs
