"""The synthetic job board is deterministic and looks like a job board."""

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.synthetic import (
    POSTINGS_SCHEMA,
    SyntheticSpec,
    generate_event_blocks,
    generate_events,
    generate_postings,
)

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


def _views_per_day(events: pa.Table) -> dict[str, int]:
    views = events.filter(pc.equal(events["event_type"], "view"))
    days = pc.value_counts(pc.strftime(views["event_ts"], format="%Y-%m-%d"))
    return dict(zip(days.field("values").to_pylist(), days.field("counts").to_pylist(), strict=True))


def test_blocks_of_days_draw_the_same_board_one_block_at_a_time():
    blocks = list(generate_event_blocks(SPEC, 7))
    whole = generate_events(SPEC)
    assert [block.schema for block in blocks] == [EVENTS_SCHEMA] * 3
    firsts = [pc.strftime(pc.min(block["event_ts"]), format="%Y-%m-%d").as_py() for block in blocks]
    assert firsts == ["2026-02-01", "2026-02-08", "2026-02-15"]
    events = pa.concat_tables(blocks)
    # Each block in time order after the one before it, with the same views per day as the whole draw.
    assert pc.all(pc.greater_equal(events["event_ts"][1:], events["event_ts"][:-1])).as_py()
    assert _views_per_day(events) == _views_per_day(whole)
    assert set(pc.unique(events["item_id"]).to_pylist()) <= set(generate_postings(SPEC)["item_id"].to_pylist())
    # Another draw than the whole set's, and the same one every time.
    assert not events.equals(whole)
    assert events.equals(pa.concat_tables(generate_event_blocks(SPEC, 7)))


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


def _event_days_and_postings(spec: SyntheticSpec):
    events = generate_events(spec)
    postings = generate_postings(spec)
    row = pc.index_in(events["item_id"], postings["item_id"]).to_numpy()
    day = events["event_ts"].to_numpy().astype("datetime64[D]")
    posted = postings["posted_day"].to_numpy().astype("datetime64[D]")[row]
    closed = postings["closed_day"].to_numpy().astype("datetime64[D]")[row]
    return events, postings, row, day, posted, closed


def test_postings_catalogue_is_deterministic_and_covers_the_events():
    postings = generate_postings(SPEC)
    assert postings.schema == POSTINGS_SCHEMA and postings.num_rows == SPEC.n_items
    assert postings.equals(generate_postings(SPEC))
    assert not postings.equals(generate_postings(SyntheticSpec(**{**SPEC.__dict__, "seed": 12})))
    _, _, row, _, posted, closed = _event_days_and_postings(SPEC)
    assert (row >= 0).all(), "every event's item is in the catalogue"
    lifetimes = (closed - posted).astype(int)
    assert lifetimes.min() >= SPEC.min_lifetime_days and lifetimes.max() <= SPEC.max_lifetime_days


def test_most_events_go_to_open_postings_and_interest_decays_with_age():
    _, _, _, day, posted, closed = _event_days_and_postings(SPEC)
    open_share = ((posted <= day) & (day < closed)).mean()
    assert 0.9 < open_share < 1.0, f"{open_share:.3f} of events on open postings"
    age = (day - posted).astype(int)
    first_week, third_week = (age < 7).sum(), ((age >= 14) & (age < 21)).sum()
    assert first_week > 3 * third_week, "a posting draws most of its interest while it is new"


def _dominant_segment_changes(spec: SyntheticSpec) -> float:
    """Share of active users whose most-viewed segment differs between the window's first and last quarter."""
    events, postings, row, day, _, _ = _event_days_and_postings(spec)
    segment = postings["segment"].to_numpy()[row]
    user = np.unique(events["user_id"].to_numpy(), return_inverse=True)[1]
    offset = (day - day.min()).astype(int)
    dominant = []
    for part in (offset < spec.n_days // 4, offset >= spec.n_days - spec.n_days // 4):
        counts = np.zeros((user.max() + 1, spec.n_segments))
        np.add.at(counts, (user[part], segment[part]), 1)
        dominant.append((counts.argmax(axis=1), counts.sum(axis=1)))
    active = (dominant[0][1] >= 15) & (dominant[1][1] >= 15)
    assert active.sum() >= 50
    return float((dominant[0][0] != dominant[1][0])[active].mean())


def test_a_share_of_users_drift_to_another_segment():
    drifting = _dominant_segment_changes(SPEC)
    steady = _dominant_segment_changes(SyntheticSpec(**{**SPEC.__dict__, "drift_share": 0.0}))
    assert steady < 0.2, f"without drift, {steady:.2f} of users changed their main segment"
    assert drifting > steady + 0.1, f"with drift {drifting:.2f} vs {steady:.2f} without"
