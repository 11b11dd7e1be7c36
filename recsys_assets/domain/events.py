"""The interactions data contract shared by every warehouse backend."""

from __future__ import annotations

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


def conform(table: pa.Table) -> pa.Table:
    """Return `table` with exactly the contract's columns, order and types."""
    missing = [name for name in EVENT_COLUMNS if name not in table.column_names]
    if missing:
        raise ValueError(
            f"events table is missing columns {missing}; expected {list(EVENT_COLUMNS)}, "
            f"got {table.column_names}"
        )
    return table.select(list(EVENT_COLUMNS)).cast(EVENTS_SCHEMA)


def day_of(ts: pa.ChunkedArray | pa.Array) -> pa.Array:
    """UTC calendar day of each timestamp, as date32."""
    return pc.cast(pc.floor_temporal(ts, unit="day"), pa.timestamp("us", tz="UTC")).cast(pa.date32())


def rows_per_day(days: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Row count of each day (YYYY-MM-DD) in a date32 column."""
    counts = pc.value_counts(days)
    return {
        str(value): int(count)
        for value, count in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
        if value is not None
    }
