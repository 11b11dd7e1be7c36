"""The extract's row classification: which weights are malformed."""

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from recsys_assets.domain.events import EVENTS_SCHEMA, day_of
from recsys_assets.domain.quality import split_extract


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
    assert split.bad_weights.rows == 5


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
