"""The extract's row classification: which weights are malformed."""

from datetime import UTC, datetime

import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA
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
