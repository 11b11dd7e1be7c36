"""The synthetic job board is deterministic and looks like a job board."""

from datetime import date

import numpy as np
import pyarrow.compute as pc

from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events

SPEC = SyntheticSpec(n_users=500, n_items=400, n_days=20, events_per_day=3000, seed=11, end_date=date(2026, 2, 20))


def test_same_seed_same_events_and_other_seed_differs():
    assert generate_events(SPEC).equals(generate_events(SPEC))
    other = generate_events(SyntheticSpec(**{**SPEC.__dict__, "seed": 12}))
    assert not generate_events(SPEC).equals(other)


def test_contract_size_and_day_range():
    events = generate_events(SPEC)
    assert events.schema == EVENTS_SCHEMA
    assert abs(events.num_rows - SPEC.n_days * SPEC.events_per_day) < 0.05 * SPEC.n_days * SPEC.events_per_day
    days = pc.unique(pc.strftime(events["event_ts"], format="%Y-%m-%d")).to_pylist()
    assert sorted(days)[0] == "2026-02-01" and sorted(days)[-1] == "2026-02-20" and len(days) == 20
    assert sum(column.null_count for column in events.columns) == 0


def test_funnel_event_types_and_power_law_popularity():
    events = generate_events(SPEC)
    counts = {v["values"]: v["counts"] for v in pc.value_counts(events["event_type"]).to_pylist()}
    assert counts["view"] > counts["bookmark"] > counts["apply"] > 0
    per_item = np.sort(pc.value_counts(events["item_id"]).field("counts").to_numpy())[::-1]
    top_decile = per_item[: len(per_item) // 10].sum() / per_item.sum()
    assert top_decile > 0.3, "the most popular tenth of jobs should draw a large share of events"


def test_items_appear_and_expire_over_time():
    events = generate_events(SPEC)
    first = events.filter(pc.less(events["event_ts"], pc.min(events["event_ts"]).as_py().replace(day=4)))
    last = events.filter(pc.greater_equal(events["event_ts"], pc.max(events["event_ts"]).as_py().replace(day=17)))
    early, late = set(first["item_id"].to_pylist()), set(last["item_id"].to_pylist())
    assert late - early, "new postings appear during the window"
    assert early - late, "old postings expire during the window"
