"""`seed --drift-from DAY`: from that day a new segment of postings takes a large share of the traffic,
half of it from people new to the board; nothing of it exists before the day."""

from dataclasses import replace
from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.domain.items import generate_catalogue
from recsys_assets.domain.synthetic import SMALL_SPEC, generate_events


def test_the_drifted_segment_and_its_newcomers_appear_from_the_drift_day_on():
    spec = replace(SMALL_SPEC, drift_from=SMALL_SPEC.end_date - timedelta(days=3))
    events, catalogue = generate_events(spec), generate_catalogue(spec)
    new_items = catalogue.filter(pc.equal(catalogue["category"], pa.scalar("segment-16")))["item_id"]
    assert len(new_items) == round(spec.n_items * spec.drift_items_share)
    day = pc.cast(events["event_ts"], pa.date32())
    before = events.filter(pc.less(day, pa.scalar(spec.drift_from, pa.date32())))
    after = events.filter(pc.greater_equal(day, pa.scalar(spec.drift_from, pa.date32())))
    on_new = pc.is_in(after["item_id"], value_set=new_items)
    assert not pc.any(pc.is_in(before["item_id"], value_set=new_items)).as_py()
    assert 0.35 < pc.mean(pc.cast(on_new, pa.float64())).as_py() < 0.65  # about half of the views and what follows
    old_users = set(before["user_id"].to_pylist())
    newcomers = set(after["user_id"].to_pylist()) - old_users
    assert newcomers and all(int(user[1:]) >= spec.n_users for user in newcomers)
    # Undrifted, the same spec has none of it.
    plain = generate_events(SMALL_SPEC)
    assert pc.max(pc.cast(pc.utf8_slice_codeunits(plain["user_id"], 1), pa.int64())).as_py() < SMALL_SPEC.n_users
