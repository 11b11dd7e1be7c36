"""Start an extract run for every new warehouse day, and again for a day whose data changed late.

The sensor asks the `warehouse` resource for its partitions (`INFORMATION_SCHEMA.PARTITIONS` on
BigQuery, a mirror table on DuckDB) and compares each day's last modification time with its cursor,
a JSON object `{partition_key: last_modified_iso}`. A run's key is `partition_key:last_modified_iso`,
so the same version of a day can never be extracted twice, even if the cursor is lost or a tick is
evaluated again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from recsys_assets.automation import DEFAULT_SENSOR_STATUS
from recsys_assets.jobs import TRIGGER_TAG, interactions_job
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.warehouse import (
    Warehouse,
    WarehousePartition,
    WarehouseUnavailable,
)

# At most this many runs per tick, oldest day first; the rest wait for the next tick. Keeps a first
# tick over years of history (or a bulk re-load) from flooding the run queue.
MAX_RUN_REQUESTS_PER_TICK = 30
# INFORMATION_SCHEMA queries are cheap but not free; five minutes is well inside a daily cadence.
MINIMUM_INTERVAL_SECONDS = 300

LAST_MODIFIED_TAG = "recsys/warehouse_last_modified"


class WarehouseListingError(RuntimeError):
    """The warehouse could not list its partitions; the tick fails and its cursor stays where it was."""


@dataclass(frozen=True)
class PartitionChange:
    """A day to extract: new to the sensor, or modified since its last extract request."""

    partition_key: str
    last_modified: str  # ISO 8601, UTC
    reason: str  # "new_partition" or "late_data"

    @property
    def run_key(self) -> str:
        return f"{self.partition_key}:{self.last_modified}"


@dataclass
class TickPlan:
    """What one tick requests, and the cursor it leaves behind."""

    changes: list[PartitionChange]
    deferred: int
    ignored: int
    cursor: dict[str, str] = field(default_factory=dict)


def _iso(ts: datetime) -> str:
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.isoformat()


def parse_cursor(raw: str | None) -> dict[str, str]:
    """The sensor's cursor as a dict; empty for a first tick.

    Raises:
        ValueError: The cursor is not a JSON object of strings.
    """
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise ValueError("cursor is not a JSON object of partition key -> last modified time")
    return data


def plan_tick(
    partitions: list[WarehousePartition],
    seen: dict[str, str],
    now: datetime,
    limit: int = MAX_RUN_REQUESTS_PER_TICK,
) -> TickPlan:
    """Decide which days to extract: new or changed ones inside the daily partitions, oldest first, at most `limit`.

    Args:
        partitions: What the warehouse reports now.
        seen: The previous cursor, partition key -> last modified time already requested.
        now: Current time; days after the last complete one (today) are not partitions yet.
        limit: Most run requests in one tick.

    Returns:
        The changes to request, how many were left for later or ignored, and the next cursor: it records
        only what was requested, so deferred days stay "changed" until a tick requests them, and it drops
        days the warehouse no longer has, so a day that comes back counts as new.
    """
    changes: list[PartitionChange] = []
    present: set[str] = set()
    ignored = 0
    with dg.partition_loading_context(effective_dt=now):
        for partition in partitions:
            key = partition.partition_key
            # Before the partitions' start, an incomplete today, or a malformed id: no run could take it.
            if not daily_partitions.has_partition_key(key):
                ignored += 1
                continue
            present.add(key)
            modified = _iso(partition.last_modified_time)
            previous = seen.get(key)
            if previous != modified:
                changes.append(PartitionChange(key, modified, "new_partition" if previous is None else "late_data"))
    changes.sort(key=lambda change: change.partition_key)
    batch = changes[:limit]
    cursor = {key: value for key, value in seen.items() if key in present}
    cursor.update({change.partition_key: change.last_modified for change in batch})
    return TickPlan(changes=batch, deferred=len(changes) - len(batch), ignored=ignored, cursor=cursor)


def _encode(cursor: dict[str, str]) -> str:
    return json.dumps(cursor, sort_keys=True, separators=(",", ":"))


@dg.sensor(
    job=interactions_job,
    minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
    default_status=DEFAULT_SENSOR_STATUS,
    description=(
        "Requests an interactions extract for each new day in the warehouse, and again for a day whose "
        f"data changed afterwards (late events); at most {MAX_RUN_REQUESTS_PER_TICK} runs per tick, oldest first."
    ),
)
def new_interaction_partitions(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> Any:
    """One run per new or late-changed warehouse day, keyed by the day and its modification time."""
    try:
        seen = parse_cursor(context.cursor)
    except ValueError as exc:
        # Run keys still prevent duplicate runs, so starting over costs only deduplicated requests.
        context.log.warning(f"unreadable cursor ({exc}); starting from an empty one")
        seen = {}

    try:
        partitions = warehouse.list_partitions()
    except Exception as exc:
        # Failing the tick shows the outage in red on the sensor's tick history (a skip is easy to miss),
        # and leaves the cursor where it was, so the next tick after recovery sees every change.
        if isinstance(exc, WarehouseUnavailable):  # its message already names the table
            raise WarehouseListingError(f"could not list warehouse partitions: {exc}") from exc
        try:
            where = warehouse.table_ref
        except Exception:
            where = type(warehouse).__name__
        raise WarehouseListingError(f"could not list the partitions of {where}: {type(exc).__name__}: {exc}") from exc

    plan = plan_tick(partitions, seen, datetime.now(UTC))
    if plan.ignored:
        context.log.info(f"ignored {plan.ignored} warehouse partitions outside the daily partitions (e.g. today)")
    if not plan.changes:
        reason = dg.SkipReason(f"no new or changed days among {len(partitions)} partitions of {warehouse.table_ref}")
        if plan.cursor != seen:
            return dg.SensorResult(skip_reason=reason, cursor=_encode(plan.cursor))
        return reason

    late = sum(change.reason == "late_data" for change in plan.changes)
    context.log.info(
        f"requesting {len(plan.changes)} extracts ({len(plan.changes) - late} new days, {late} late changes) "
        f"from {plan.changes[0].partition_key} to {plan.changes[-1].partition_key}"
        + (f"; {plan.deferred} more next tick" if plan.deferred else "")
    )
    run_requests = [
        dg.RunRequest(
            run_key=change.run_key,
            partition_key=change.partition_key,
            tags={TRIGGER_TAG: change.reason, LAST_MODIFIED_TAG: change.last_modified},
        )
        for change in plan.changes
    ]
    return dg.SensorResult(run_requests=run_requests, cursor=_encode(plan.cursor))
