"""The extract's row classification: which weights are malformed."""

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from recsys_assets.domain.events import EVENTS_SCHEMA, day_of
from recsys_assets.domain.quality import reads_of, split_extract


def test_non_finite_negative_missing_and_absurd_weights_are_rejected():
    weights = [1.0, 2.5, float("inf"), float("nan"), -1.0, None, 1e308, 1e6]
    ts = datetime(2026, 1, 2, 12, tzinfo=UTC)
    table = pa.table(
        {
            "user_id": ["u"] * len(weights),
            "item_id": [f"j{i}" for i in range(len(weights))],
            "event_type": ["view"] * len(weights),
            "weight": weights,
            "event_ts": [ts] * len(weights),
        },
        schema=EVENTS_SCHEMA,
    )
    split = split_extract(table, ["2026-01-02"])
    assert split.valid["item_id"].to_pylist() == ["j0", "j1", "j7"]
    assert [day.bad_weights for day in split.days] == [5]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
@pytest.mark.parametrize("zone", [None, "UTC", "Europe/Paris", "America/Los_Angeles"])
def test_day_of_is_the_utc_day_whatever_the_unit_and_zone_pre_1970_included(unit, zone):
    instants = [
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2004, 8, 4, 23, 30, tzinfo=UTC),  # already the 5th in Paris, still the 4th in UTC
        datetime(2026, 6, 30, 7, 15, tzinfo=UTC),  # still the 29th in Los Angeles
    ]
    per_second = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}[unit]
    values = [int(instant.timestamp()) * per_second for instant in instants] + [None]
    stamps = pa.array(values, pa.timestamp(unit, tz=zone))
    assert day_of(stamps).to_pylist() == [instant.date() for instant in instants] + [None]
    assert day_of(pa.chunked_array([stamps[:2], stamps[2:]])).to_pylist() == day_of(stamps).to_pylist()


def test_rows_outside_the_partition_days_or_without_a_timestamp_are_rejected_and_the_rest_split_per_day():
    stamps = [
        datetime(2026, 1, 1, 23, 59, tzinfo=UTC),  # the day before the range
        datetime(2026, 1, 2, 8, tzinfo=UTC),
        datetime(2026, 1, 4, 9, tzinfo=UTC),  # a gap day inside the range has no rows
        datetime(2026, 1, 2, 9, tzinfo=UTC),  # out of time order
        datetime(2026, 1, 5, 0, 0, tzinfo=UTC),  # the day after
        None,
    ]
    table = pa.table(
        {
            "user_id": ["u"] * len(stamps),
            "item_id": [f"j{i}" for i in range(len(stamps))],
            "event_type": ["view"] * len(stamps),
            "weight": [1.0] * len(stamps),
            "event_ts": stamps,
        },
        schema=EVENTS_SCHEMA,
    )
    split = split_extract(table, ["2026-01-02", "2026-01-03", "2026-01-04"])
    assert split.rows_outside == 3 and sorted(split.rejected["item_id"].to_pylist()) == ["j0", "j4", "j5"]
    assert split.rows_per_day == {"2026-01-02": 2, "2026-01-03": 0, "2026-01-04": 1}
    assert [split.valid["item_id"][lo:hi].to_pylist() for _, lo, hi in split.day_bounds] == [["j1", "j3"], [], ["j2"]]


def test_blank_warehouse_ids_are_null_ids_as_in_the_importers():
    ids = ["j1", "", "  ", None, "NA"]
    ts = datetime(2026, 1, 2, 12, tzinfo=UTC)
    table = pa.table(
        {
            "user_id": ["u"] * len(ids),
            "item_id": ids,
            "event_type": ["view"] * len(ids),
            "weight": [1.0] * len(ids),
            "event_ts": [ts] * len(ids),
        },
        schema=EVENTS_SCHEMA,
    )
    split = split_extract(table, ["2026-01-02"])
    assert split.valid["item_id"].to_pylist() == ["j1", "NA"]
    assert [day.null_ids for day in split.days] == [3]


def test_reads_are_consecutive_days_within_the_row_budget_and_a_larger_day_alone():
    rows = {"2026-01-01": 40, "2026-01-02": 50, "2026-01-03": 150, "2026-01-04": 10, "2026-01-07": 10}
    keys = ["2026-01-07", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
    assert reads_of(keys, rows, 100) == [
        ["2026-01-01", "2026-01-02"],
        ["2026-01-03"],  # over the budget alone: a day is never split
        ["2026-01-04", "2026-01-05"],  # a day the warehouse has no count of holds nothing
        ["2026-01-07"],  # never read across a gap
    ]
    assert reads_of(keys, {}, 100) == [sorted(keys)[:-1], ["2026-01-07"]]
    assert reads_of(keys[1:3], rows, 1) == [["2026-01-01"], ["2026-01-02"]]
    assert reads_of([], rows, 100) == []
