"""Synthetic job-board interaction events: deterministic for a seed and fully vectorised.

The generator is built so that personalisation genuinely helps: users have latent tastes
(a primary and a secondary job segment), jobs are posted and expire over time, popularity is
power-law, and a view can turn into a bookmark and then an application.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pyarrow as pa

from recsys_assets.domain.events import EVENTS_SCHEMA

EVENT_TYPES = np.array(["view", "bookmark", "apply"])


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

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.n_days - 1)


def _ids(prefix: str, indices: np.ndarray, size: int) -> pa.Array:
    width = len(str(max(size - 1, 1)))
    dictionary = pa.array([f"{prefix}{i:0{width}d}" for i in range(size)])
    return pa.DictionaryArray.from_arrays(pa.array(indices, type=pa.int32()), dictionary).cast(pa.string())


def generate_events(spec: SyntheticSpec) -> pa.Table:
    """Events in the interactions contract for `spec.n_days` days ending at `spec.end_date`."""
    rng = np.random.default_rng(spec.seed)
    k = spec.n_segments

    item_segment = rng.integers(0, k, spec.n_items)
    item_popularity = rng.pareto(1.1, spec.n_items) + 1.0
    # Postings start before the window too, so the first day already has a live catalogue.
    item_start = rng.integers(-40, spec.n_days, spec.n_items)
    item_end = item_start + rng.integers(10, 60, spec.n_items)

    user_primary = rng.integers(0, k, spec.n_users)
    user_secondary = (user_primary + rng.integers(1, k, spec.n_users)) % k
    user_activity = rng.pareto(1.5, spec.n_users) + 1.0
    user_activity /= user_activity.sum()

    # Segment affinity: strong on the diagonal, a little for neighbouring segments.
    affinity = np.full((k, k), 0.01)
    affinity[np.arange(k), np.arange(k)] = 1.0
    affinity[np.arange(k), (np.arange(k) + 1) % k] = 0.15

    views_per_day = max(1, round(spec.events_per_day / (1 + spec.bookmark_rate * (1 + spec.apply_rate))))
    n_views = views_per_day * spec.n_days
    view_day = np.repeat(np.arange(spec.n_days), views_per_day)
    view_user = rng.choice(spec.n_users, size=n_views, p=user_activity)
    taste = np.where(rng.random(n_views) < spec.primary_taste, user_primary[view_user], user_secondary[view_user])
    view_item = np.empty(n_views, dtype=np.int64)
    uniforms = rng.random(n_views)

    # Sample an item for every view from p(item | day, taste segment): one vectorised
    # inverse-CDF draw per (day, segment) group instead of a draw per event.
    group = view_day * k + taste
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(spec.n_days * k + 1))
    for day in range(spec.n_days):
        active = (item_start <= day) & (day < item_end)
        base = item_popularity * active
        for segment in range(k):
            lo, hi = bounds[day * k + segment], bounds[day * k + segment + 1]
            if lo == hi:
                continue
            weights = base * affinity[segment, item_segment]
            cdf = np.cumsum(weights)
            picks = order[lo:hi]
            view_item[picks] = np.minimum(
                np.searchsorted(cdf, uniforms[picks] * cdf[-1], side="right"), spec.n_items - 1
            )

    seconds = view_day * 86400 + rng.integers(0, 86400 - 3600, n_views)
    # Users bookmark (and apply to) jobs of their own primary segment far more often.
    on_taste = item_segment[view_item] == user_primary[view_user]
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
            "user_id": _ids("u", users[order], spec.n_users),
            "item_id": _ids("job", items[order], spec.n_items),
            "event_type": pa.DictionaryArray.from_arrays(
                pa.array(kinds[order], type=pa.int8()), pa.array(EVENT_TYPES)
            ).cast(pa.string()),
            "weight": pa.array(np.ones(len(order))),
            "event_ts": pa.array(epoch_us + offsets[order] * 1_000_000, pa.timestamp("us", tz="UTC")),
        },
        schema=EVENTS_SCHEMA,
    )
