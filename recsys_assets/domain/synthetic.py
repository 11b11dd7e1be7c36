"""Synthetic job-board interaction events: deterministic for a seed and fully vectorised.

The generator is built so that personalisation and recency both genuinely help, as on a real
job board: users have latent tastes (a primary and a secondary job segment) and a share of them
drift to a new primary segment during the window; postings open and close (lifetimes of days to
weeks) and almost all interest goes to open postings; a posting's pull decays with its age on top
of a power-law base popularity; and a view can turn into a bookmark and then an application.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA

EVENT_TYPES = np.array(["view", "bookmark", "apply"])

POSTINGS_SCHEMA = pa.schema(
    [
        pa.field("item_id", pa.string()),
        pa.field("segment", pa.int32()),
        pa.field("posted_day", pa.date32()),
        pa.field("closed_day", pa.date32()),
    ]
)


def _yesterday() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and shape of a synthetic job board."""

    n_users: int = 4000
    n_items: int = 1500
    n_days: int = 35
    events_per_day: int = 12000
    seed: int = 7
    end_date: date = field(default_factory=_yesterday)
    n_segments: int = 16
    primary_taste: float = 0.8
    bookmark_rate: float = 0.12
    apply_rate: float = 0.35  # share of bookmarks that become applications
    min_lifetime_days: int = 4
    max_lifetime_days: int = 42
    # Age at which a posting draws half the interest it drew on the day it opened.
    popularity_half_life_days: float = 7.0
    # A closed posting keeps a little interest for a while (stale links, saved searches).
    closed_interest: float = 0.03
    closed_interest_days: int = 14
    # Share of users whose primary segment moves to another one on a day inside the window.
    drift_share: float = 0.35
    # Market drift (`seed --drift-from DAY`): from this day a new segment of postings opens (the last
    # `drift_items_share` of the catalogue) and takes `drift_traffic_share` of every day's views.
    drift_from: date | None = None
    drift_items_share: float = 0.2
    drift_traffic_share: float = 0.5
    # Of that traffic, the share that comes from people new to the board (`drift_new_users` x n_users of them).
    drift_newcomer_share: float = 0.5
    drift_new_users: float = 0.25

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.n_days - 1)

    @property
    def segments(self) -> int:
        """Job segments, the drifted market's new one included."""
        return self.n_segments + (1 if self.drift_from is not None else 0)

    @property
    def all_users(self) -> int:
        """Users, the drifted market's newcomers included."""
        return self.n_users + (max(1, round(self.n_users * self.drift_new_users)) if self.drift_from else 0)

    @property
    def drift_day(self) -> int | None:
        """The day index (0 = `start_date`) the drift starts, or None."""
        return None if self.drift_from is None else (self.drift_from - self.start_date).days


@dataclass(frozen=True)
class _Catalogue:
    segment: np.ndarray  # job segment of each posting
    popularity: np.ndarray  # power-law base pull
    opens: np.ndarray  # day index (0 = spec.start_date) the posting opens; negative = before the window
    closes: np.ndarray  # first day index the posting is closed


def _streams(spec: SyntheticSpec) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    # Independent streams for catalogue, users and events, so the catalogue is the same
    # whichever of generate_postings / generate_events draws it.
    return tuple(np.random.default_rng(s) for s in np.random.SeedSequence(spec.seed).spawn(3))  # type: ignore[return-value]


def _catalogue(spec: SyntheticSpec, rng: np.random.Generator) -> _Catalogue:
    segment = rng.integers(0, spec.n_segments, spec.n_items)
    popularity = rng.pareto(1.1, spec.n_items) + 1.0
    lifetime = rng.integers(spec.min_lifetime_days, spec.max_lifetime_days + 1, spec.n_items)
    # Postings open before the window too, so the first day already has a live catalogue.
    opens = rng.integers(-spec.max_lifetime_days, spec.n_days, spec.n_items)
    closes = opens + lifetime
    if spec.drift_day is not None:
        # The new segment's postings open from the drift day on (a few a day) and stay open to the end.
        new = np.arange(spec.n_items - max(1, round(spec.n_items * spec.drift_items_share)), spec.n_items)
        segment[new] = spec.n_segments
        opens[new] = spec.drift_day + np.arange(len(new)) % 3
        closes[new] = spec.n_days + spec.max_lifetime_days
    return _Catalogue(segment, popularity, opens, closes)


def _ids(prefix: str, indices: np.ndarray, size: int) -> pa.Array:
    width = len(str(max(size - 1, 1)))
    dictionary = pa.array([f"{prefix}{i:0{width}d}" for i in range(size)])
    return pa.DictionaryArray.from_arrays(pa.array(indices, type=pa.int32()), dictionary).cast(pa.string())


def _dates(spec: SyntheticSpec, day_index: np.ndarray) -> pa.Array:
    epoch_day = (spec.start_date - date(1970, 1, 1)).days
    return pa.array((epoch_day + day_index).astype(np.int32), pa.date32())


def generate_postings(spec: SyntheticSpec) -> pa.Table:
    """The job catalogue behind `generate_events(spec)`: one row per posting.

    `posted_day` is the first day a posting is open and `closed_day` the first day it is closed;
    both may fall outside the window. `segment` is the posting's job segment (0..n_segments-1).
    """
    catalogue = _catalogue(spec, _streams(spec)[0])
    return pa.table(
        {
            "item_id": _ids("job", np.arange(spec.n_items), spec.n_items),
            "segment": pa.array(catalogue.segment.astype(np.int32)),
            "posted_day": _dates(spec, catalogue.opens),
            "closed_day": _dates(spec, catalogue.closes),
        },
        schema=POSTINGS_SCHEMA,
    )


def _day_weights(spec: SyntheticSpec, catalogue: _Catalogue, day: int) -> np.ndarray:
    """Each posting's pull on `day`: base popularity, decayed with age, near zero once closed."""
    age = day - catalogue.opens
    open_now = (age >= 0) & (day < catalogue.closes)
    recently_closed = (day >= catalogue.closes) & (day < catalogue.closes + spec.closed_interest_days)
    decay = np.exp2(-np.maximum(age, 0) / spec.popularity_half_life_days)
    return catalogue.popularity * decay * (open_now + spec.closed_interest * recently_closed)


@dataclass(frozen=True)
class _Board:
    """What stays fixed while days are drawn: the catalogue and the users' tastes."""

    catalogue: _Catalogue
    primary: np.ndarray
    secondary: np.ndarray
    activity: np.ndarray  # each user's share of the views
    drift_to: np.ndarray
    drift_day: np.ndarray  # day index a user's primary segment moves to `drift_to` (int32 max: never)


def _board(spec: SyntheticSpec) -> _Board:
    catalogue_rng, user_rng, _ = _streams(spec)
    catalogue = _catalogue(spec, catalogue_rng)
    # Users' tastes are among the market's first segments: the drifted segment is new to all of them.
    user_primary = user_rng.integers(0, spec.n_segments, spec.n_users)
    user_secondary = (user_primary + user_rng.integers(1, spec.n_segments, spec.n_users)) % spec.n_segments
    user_activity = user_rng.pareto(1.5, spec.n_users) + 1.0
    user_activity /= user_activity.sum()
    # Drifting users take a new primary segment from a day inside the window; their old one
    # stays as a weaker interest, so history still says something about them.
    drifts = user_rng.random(spec.n_users) < spec.drift_share
    drift_to = (user_primary + user_rng.integers(1, spec.n_segments, spec.n_users)) % spec.n_segments
    drift_day = np.where(drifts, user_rng.integers(1, max(spec.n_days, 2), spec.n_users), np.iinfo(np.int32).max)
    return _Board(catalogue, user_primary, user_secondary, user_activity, drift_to, drift_day)


def _events_of_days(
    spec: SyntheticSpec, board: _Board, first: int, last: int, rng: np.random.Generator, drift_rng: np.random.Generator
) -> pa.Table:
    """The events of day indices `first`..`last - 1`, drawn from `rng` (and `drift_rng` for the drifted market)."""
    catalogue, k = board.catalogue, spec.segments
    user_primary, user_secondary, drift_to, drift_day = board.primary, board.secondary, board.drift_to, board.drift_day

    # Segment affinity: strong on the diagonal, a little for neighbouring segments.
    affinity = np.full((k, k), 0.01)
    affinity[np.arange(k), np.arange(k)] = 1.0
    affinity[np.arange(k), (np.arange(k) + 1) % k] = 0.15

    days = last - first
    views_per_day = max(1, round(spec.events_per_day / (1 + spec.bookmark_rate * (1 + spec.apply_rate))))
    n_views = views_per_day * days
    view_day = np.repeat(np.arange(first, last), views_per_day)
    view_user = rng.choice(spec.n_users, size=n_views, p=board.activity)
    drifted = view_day >= drift_day[view_user]
    primary = np.where(drifted, drift_to[view_user], user_primary[view_user])
    secondary = np.where(drifted, user_primary[view_user], user_secondary[view_user])
    taste = np.where(rng.random(n_views) < spec.primary_taste, primary, secondary)
    if spec.drift_day is not None:
        # Its own stream: the views before the drift day are those of the undrifted board.
        moved = (drift_rng.random(n_views) < spec.drift_traffic_share) & (view_day >= spec.drift_day)
        taste = np.where(moved, spec.n_segments, taste)
        # Part of the new segment's traffic comes from people who never used the board before.
        newcomer = moved & (drift_rng.random(n_views) < spec.drift_newcomer_share)
        newcomers = drift_rng.integers(spec.n_users, spec.all_users, n_views)
        view_user = np.where(newcomer, newcomers, view_user)
    view_item = np.empty(n_views, dtype=np.int64)
    uniforms = rng.random(n_views)

    # Sample an item for every view from p(item | day, taste segment): one vectorised
    # inverse-CDF draw per (day, segment) group instead of a draw per event.
    group = (view_day - first) * k + taste
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(days * k + 1))
    for offset in range(days):
        base = _day_weights(spec, catalogue, first + offset)
        for segment in range(k):
            lo, hi = bounds[offset * k + segment], bounds[offset * k + segment + 1]
            if lo == hi:
                continue
            cdf = np.cumsum(base * affinity[segment, catalogue.segment])
            picks = order[lo:hi]
            view_item[picks] = np.minimum(
                np.searchsorted(cdf, uniforms[picks] * cdf[-1], side="right"), spec.n_items - 1
            )

    seconds = view_day * 86400 + rng.integers(0, 86400 - 3600, n_views)
    # Users bookmark (and apply to) jobs of their current primary segment far more often.
    on_taste = catalogue.segment[view_item] == primary
    bookmark = rng.random(n_views) < np.where(on_taste, spec.bookmark_rate * 1.6, spec.bookmark_rate * 0.3)
    apply = bookmark & (rng.random(n_views) < spec.apply_rate)
    follow_up = rng.integers(30, 1800, n_views)

    users = np.concatenate([view_user, view_user[bookmark], view_user[apply]])
    items = np.concatenate([view_item, view_item[bookmark], view_item[apply]])
    kinds = np.concatenate(
        [np.zeros(n_views, np.int8), np.ones(bookmark.sum(), np.int8), np.full(apply.sum(), 2, np.int8)]
    )
    offsets = np.concatenate([seconds, seconds[bookmark] + follow_up[bookmark], seconds[apply] + 2 * follow_up[apply]])

    epoch_us = int(datetime.combine(spec.start_date, datetime.min.time(), tzinfo=UTC).timestamp()) * 1_000_000
    order = np.argsort(offsets, kind="stable")
    return pa.table(
        {
            "user_id": _ids("u", users[order], spec.all_users),
            "item_id": _ids("job", items[order], spec.n_items),
            "event_type": pa.DictionaryArray.from_arrays(
                pa.array(kinds[order], type=pa.int8()), pa.array(EVENT_TYPES)
            ).cast(pa.string()),
            "weight": pa.array(np.ones(len(order))),
            "event_ts": pa.array(epoch_us + offsets[order] * 1_000_000, pa.timestamp("us", tz="UTC")),
        },
        schema=EVENTS_SCHEMA,
    )


def generate_events(spec: SyntheticSpec) -> pa.Table:
    """Events in the interactions contract for `spec.n_days` days ending at `spec.end_date`."""
    return _events_of_days(
        spec, _board(spec), 0, spec.n_days, _streams(spec)[2], np.random.default_rng([spec.seed, 21])
    )


def generate_event_blocks(spec: SyntheticSpec, days_per_block: int) -> Iterator[pa.Table]:
    """The same board's events, `days_per_block` days at a time, for data sets too large to draw at once.

    Each block draws from its own stream (seeded by the spec's seed and the block), so the events are
    not `generate_events(spec)`'s, but the board (catalogue, tastes, drifts) and the shape are the same,
    and the memory held is one block's.
    """
    board = _board(spec)
    for block, first in enumerate(range(0, spec.n_days, days_per_block)):
        rng = np.random.default_rng([spec.seed, 1000 + block])
        drift_rng = np.random.default_rng([spec.seed, 21, block])
        yield _events_of_days(spec, board, first, min(first + days_per_block, spec.n_days), rng, drift_rng)


# Named data sets, shared by the tests and the benchmarks, so a figure says which data it was measured on.
# Small enough to train in about a second, big enough that ALS clearly beats popularity.
SMALL_SPEC = SyntheticSpec(n_users=600, n_items=300, n_days=10, events_per_day=2500, seed=3, end_date=date(2026, 3, 10))
# The default 28-day window filled, so the default 7-day global cut has days to fit, validate and hold out.
WINDOW_SPEC = SyntheticSpec(n_users=600, n_items=300, n_days=28, events_per_day=900, end_date=date(2026, 3, 10))
# The benchmarks' job boards (benchmarks/README.md), by their number of events.
BENCHMARK_SPECS = {
    "1m": SyntheticSpec(n_users=30_000, n_items=5_000, n_days=28, events_per_day=36_000, end_date=date(2026, 11, 28)),
    "10m": SyntheticSpec(
        n_users=200_000, n_items=30_000, n_days=100, events_per_day=100_000, end_date=date(2026, 11, 28)
    ),
    "30m": SyntheticSpec(
        n_users=300_000, n_items=50_000, n_days=100, events_per_day=300_000, end_date=date(2026, 11, 28)
    ),
    "100m": SyntheticSpec(
        n_users=1_000_000, n_items=100_000, n_days=100, events_per_day=1_000_000, end_date=date(2026, 11, 28)
    ),
}
