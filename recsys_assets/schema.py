"""The interactions data contract shared by every warehouse backend."""

from __future__ import annotations

import pyarrow as pa

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
