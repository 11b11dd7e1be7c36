"""Follow the release pull requests: merged -> released (the champion moves), closed -> rejected.

Each tick asks the release publisher (GitHub, or the local file-based proposals) about at most
`MAX_PULL_REQUESTS_PER_TICK` open proposals, continuing after the cursor's version so that a long
queue is worked through in turn, then checks that the base branch still names the champion (a
reverted merge rolls it back). The changes are recorded in the model registry's write-once events
inside the tick: they are a few small writes, no run has anything to compute, and a tick evaluated
twice or two racing ticks find the state already reached (the events are keyed by sequence number,
so only one writer can win each). Each change is reported as an observation of `model_release` for
the version's partition, so it shows on the asset in the UI.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from recsys_assets.automation import sensor_status
from recsys_assets.domain.failures import one_line
from recsys_assets.domain.layout import serving_pointer_path
from recsys_assets.domain.redaction import scrub_exception
from recsys_assets.domain.registry import VersionStatus
from recsys_assets.release.model_release import release_observation
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.resources.registry import ModelRegistry, sync_registry
from recsys_assets.resources.release import ReleasePublisher
from recsys_assets.resources.tracking import ExperimentTracker
from recsys_assets.settings import Settings

# GitHub allows 5,000 requests an hour per token; 20 pull requests a minute stays far below it.
MAX_PULL_REQUESTS_PER_TICK = 20
MINIMUM_INTERVAL_SECONDS = 60


class ReleasePollingError(RuntimeError):
    """The publisher or the model store could not be read; the tick fails and its cursor stays."""


def next_batch(
    proposed: list[VersionStatus], after: str | None, limit: int = MAX_PULL_REQUESTS_PER_TICK
) -> list[VersionStatus]:
    """Up to `limit` proposals in version order, starting after `after` and wrapping around."""
    ordered = sorted(proposed, key=lambda s: s.version)
    start = next((i for i, s in enumerate(ordered) if after is None or s.version > after), 0)
    return (ordered[start:] + ordered[:start])[:limit]


def parse_cursor(raw: str | None) -> str | None:
    """The last version polled, or None (start from the oldest)."""
    if not raw:
        return None
    data = json.loads(raw)
    if not isinstance(data, dict) or not isinstance(data.get("after"), str | None):
        raise ValueError("cursor is not a JSON object with an 'after' version")
    return data.get("after")


def build_release_pull_requests(settings: Settings) -> dg.SensorDefinition:
    """The `release_pull_requests` sensor for the settings' model, started as `RECSYS_AUTOMATION` says."""

    @dg.sensor(
        name="release_pull_requests",
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=sensor_status(settings),
        description=(
            "Follows the open release pull requests: merged -> released (the champion moves), closed -> rejected, "
            "and a reverted pointer rolls the champion back; "
            f"at most {MAX_PULL_REQUESTS_PER_TICK} pull requests per tick."
        ),
    )
    def release_pull_requests(
        context: dg.SensorEvaluationContext,
        model_store: ModelStore,
        release_publisher: ReleasePublisher,
        tracker: ExperimentTracker,
    ) -> Any:
        """Record merged release pull requests as released, closed ones as rejected, reverted ones as rolled back."""
        registry = ModelRegistry(model_store, settings.model_name, tracker)
        return follow_release_pull_requests(context, registry, release_publisher)

    return release_pull_requests


def follow_release_pull_requests(
    context: dg.SensorEvaluationContext, registry: ModelRegistry, release_publisher: ReleasePublisher
) -> Any:
    """One tick: the next batch of open proposals asked about, and the base branch's pointer followed."""
    try:
        after = parse_cursor(context.cursor)
    except ValueError as exc:
        context.log.warning(f"unreadable cursor ({exc}); starting from the oldest proposal")
        after = None
    try:
        proposed = [s for s in registry.statuses().values() if s.state == "proposed"]
        batch = next_batch(proposed, after)
        transitions = sync_registry(
            registry, release_publisher, serving_pointer_path(registry.model_name), proposed=batch
        )
    except Exception as exc:
        # A failed tick is red in the sensor's history (a skip is easy to miss) and keeps the cursor.
        # The tick's error is stored: scrubbed of secrets, its cause included.
        cause = scrub_exception(exc)
        raise ReleasePollingError(f"could not follow the release pull requests: {one_line(cause)}") from cause

    for note in registry.quarantined:
        context.log.warning(note.line())
    cursor = json.dumps({"after": batch[-1].version if batch else None})
    if not transitions:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"no change among {len(batch)} open release proposals"), cursor=cursor
        )
    for transition in transitions:
        context.log.info(f"{transition.version} -> {transition.state}: {transition.reason}")
    return dg.SensorResult(asset_events=[release_observation(registry, t) for t in transitions], cursor=cursor)
