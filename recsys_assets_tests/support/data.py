"""Public-format data files made from the synthetic job board (public data sets cannot be downloaded here)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.domain.synthetic import SMALL_SPEC, SyntheticSpec, generate_events

# A 28-day history, so the default window and cut have days to fit, validate and hold out.
MOVIELENS_SPEC = replace(SMALL_SPEC, n_days=28, events_per_day=900)


def write_movielens_u_data(path: Path, spec: SyntheticSpec) -> int:
    """Write MovieLens `u.data` (user item rating unix_ts, tab-separated) made from `spec`'s events; return their count.

    Public data sets cannot be downloaded here; ratings follow the event funnel (view 3, bookmark 4, apply 5).
    """
    events = generate_events(spec)
    users = pc.cast(pc.utf8_slice_codeunits(events["user_id"], 1), "int64").to_numpy()
    items = pc.cast(pc.utf8_slice_codeunits(events["item_id"], 3), "int64").to_numpy()
    rating = np.select(
        [events["event_type"].to_numpy(zero_copy_only=False) == t for t in ("view", "bookmark", "apply")], [3, 4, 5]
    )
    seconds = pc.cast(events["event_ts"], "int64").to_numpy() // 1_000_000
    np.savetxt(path, np.column_stack([users + 1, items + 1, rating, seconds]), fmt="%d", delimiter="\t")
    return events.num_rows


def add_late_row(warehouse, day: date, event_type: str | None = None) -> None:
    """Add one late event to `day` in the warehouse: its first row again, on its second row's item (and `event_type`)."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    rows = warehouse.read_events(start, start + timedelta(days=1))
    late = rows.slice(0, 1).set_column(
        rows.schema.get_field_index("item_id"), "item_id", pa.array([rows["item_id"][1].as_py()])
    )
    if event_type is not None:
        late = late.set_column(late.schema.get_field_index("event_type"), "event_type", pa.array([event_type]))
    warehouse.replace_days(pa.concat_tables([rows, late.cast(rows.schema)]))
