"""A small synthetic job board in the embedded warehouse, and champions fitted on its events and released."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.domain.items import generate_catalogue
from recsys_assets.domain.synthetic import SMALL_SPEC, SyntheticSpec, generate_events
from recsys_assets.resources.registry import ModelRegistry
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.bundles import FittedBundle, publish_from_events
from recsys_assets_tests.support.environment import local_resources

SPEC = replace(SMALL_SPEC, n_users=300, n_items=150, events_per_day=800)
DAY = SPEC.end_date
# A market that changes slowly (postings open for one to two months, interest fading over weeks, no
# user changing segment): a champion's outcome holds for weeks unless the market drifts (`drift_from`).
STEADY_SPEC = replace(
    SMALL_SPEC,
    n_days=30,
    min_lifetime_days=30,
    max_lifetime_days=60,
    popularity_half_life_days=60.0,
    drift_share=0.0,
)
MODEL = SETTINGS.model_name


def seeded_board(root, spec: SyntheticSpec = SPEC) -> dict[str, Any]:
    """The embedded resources under `root`, seeded with the synthetic job board's events and postings."""
    resources = local_resources(root)
    resources["item_catalogue"].replace_items(generate_catalogue(spec))
    resources["warehouse"].replace_days(generate_events(spec))
    return resources


def publish(
    resources: dict[str, Any],
    version: str,
    release: bool,
    family: str = "item_knn",
    through: date | None = None,
    spec: SyntheticSpec = SPEC,
) -> FittedBundle:
    """A bundle fitted on the board's events up to `through` (default: the day before DAY), proposed, and
    released when `release`."""
    end = through or spec.end_date - timedelta(days=1)
    events = generate_events(spec)
    events = events.filter(pc.less_equal(pc.cast(events["event_ts"], pa.date32()), pa.scalar(end)))
    # The postings known when it was trained, as a training set's item index holds them.
    catalogue = generate_catalogue(spec)
    items = catalogue.filter(pc.less_equal(catalogue["posted_date"], pa.scalar(end)))["item_id"].to_pylist()
    fitted = publish_from_events(resources["model_store"], version, events, items, family)
    registry = ModelRegistry(resources["model_store"], MODEL)
    registry.record(version, "proposed", "test")
    if release:
        registry.release(version, "merged in the test")
    return fitted
