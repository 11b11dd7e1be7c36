"""The interactions data contract shared by every warehouse backend."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string()),
        pa.field("item_id", pa.string()),
        pa.field("event_type", pa.string()),
        pa.field("weight", pa.float64()),
        pa.field("event_ts", pa.timestamp("us", tz="UTC")),
    ]
)
EVENT_COLUMNS = tuple(EVENTS_SCHEMA.names)

# Default confidence of each event type on a job board; an apply says far more than a view.
EVENT_TYPE_WEIGHTS: dict[str, float] = {"view": 1.0, "bookmark": 3.0, "apply": 5.0}

# A weight above this is a unit or export error, not a stronger signal: squared inside ALS it
# overflows float32 and turns every factor into NaN. Such rows are malformed, like negative ones.
MAX_WEIGHT = 1e6


def bad_weights(weights: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """True where a weight is missing, negative, not finite or above MAX_WEIGHT."""
    values = filled_numpy(weights, np.nan).astype(np.float64)
    with np.errstate(invalid="ignore"):
        return ~(np.isfinite(values) & (values >= 0) & (values <= MAX_WEIGHT))


def conform(table: pa.Table) -> pa.Table:
    """Return `table` with exactly the contract's columns, order and types."""
    missing = [name for name in EVENT_COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(
            f"events table is missing columns {missing}; expected {list(EVENT_COLUMNS)}, got {table.column_names}"
        )
    return table.select(list(EVENT_COLUMNS)).cast(EVENTS_SCHEMA)


def day_of(ts: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """UTC calendar day of each timestamp, as date32."""
    # The same instants read in UTC (a metadata-only cast), then one cast to the day: 7x faster than
    # flooring with floor_temporal first (0.12 s against 0.83 s for 10 M events) and equal, pre-1970 included.
    timestamp_type = cast(pa.TimestampType, ts.type)
    return pc.cast(ts, pa.timestamp(timestamp_type.unit, tz="UTC")).cast(pa.date32())


def rows_per_value(column: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Row count of each distinct non-null value of `column`, keyed by its text (a date32 day: YYYY-MM-DD)."""
    counts = pc.value_counts(column)
    values, totals = counts.field("values").to_pylist(), counts.field("counts").to_numpy()
    return {str(value): int(total) for value, total in zip(values, totals, strict=True) if value is not None}


def filled_numpy(values: pa.Array | pa.ChunkedArray, fill: Any) -> np.ndarray:
    """`values` as a NumPy array with every null replaced by `fill`."""
    # pyarrow's stubs type fill_null's result after the fill value; with an array in, an array comes out.
    return cast(pa.Array, pc.fill_null(values, fill)).to_numpy(zero_copy_only=False)
