"""Start an extract run for every new warehouse day, and again for a day whose data changed late.

The sensor asks the `warehouse` resource for its partitions (`INFORMATION_SCHEMA.PARTITIONS` on
BigQuery, a mirror table on DuckDB) and requests an extract for each day that `interactions` has not
materialized since the day's last modification (the instance's materialization records are the
truth, so days extracted by a backfill, the CLI or the training set are not extracted again). The
cursor is small: a watermark, the last modification time up to which every day was handled, plus the
few days requested beyond it when a tick was cut short. A run's key is `partition_key:last_modified_iso`,
so the same version of a day is never extracted twice, even if the cursor is lost.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from recsys_assets.automation import sensor_status
from recsys_assets.jobs import TRIGGER_TAG, interactions_job
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.warehouse import (
    Warehouse,
    WarehousePartition,
    WarehouseUnavailable,
)
from recsys_assets.settings import Settings

# At most this many runs per tick, oldest day first; the rest wait for the next tick. Keeps a first
# tick over years of history (or a bulk re-load) from flooding the run queue.
MAX_RUN_REQUESTS_PER_TICK = 30
# INFORMATION_SCHEMA queries are cheap but not free; five minutes is well inside a daily cadence.
MINIMUM_INTERVAL_SECONDS = 300

LAST_MODIFIED_TAG = "recsys/warehouse_last_modified"
INTERACTIONS = dg.AssetKey("interactions")


class WarehouseListingError(RuntimeError):
    """The warehouse could not list its partitions; the tick fails and its cursor stays where it was."""


@dataclass(frozen=True)
class PartitionChange:
    """A day to extract: never extracted, or modified since its last extract."""

    partition_key: str
    last_modified: str  # ISO 8601, UTC
    reason: str  # "new_partition" or "late_data"

    @property
    def run_key(self) -> str:
        return f"{self.partition_key}:{self.last_modified}"


@dataclass(frozen=True)
class Cursor:
    """Every day last modified at or before `through` is handled; `also` lists days requested beyond it."""

    through: str | None = None
    also: dict[str, str] = field(default_factory=dict)

    def encode(self) -> str:
        return json.dumps({"through": self.through, "also": self.also}, sort_keys=True, separators=(",", ":"))


@dataclass
class TickPlan:
    """What one tick requests, and the cursor it leaves behind."""

    changes: list[PartitionChange]
    deferred: int
    ignored: int
    up_to_date: int
    cursor: Cursor


def _iso(ts: datetime) -> str:
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.isoformat()


def parse_cursor(raw: str | None) -> Cursor:
    """The sensor's cursor; empty for a first tick.

    Raises:
        ValueError: The cursor is not this sensor's JSON object.
    """
    if not raw:
        return Cursor()
    data = json.loads(raw)
    if not isinstance(data, dict) or set(data) != {"through", "also"}:
        raise ValueError("cursor is not a JSON object with `through` and `also`")
    through, also = data["through"], data["also"]
    if not (through is None or isinstance(through, str)) or not isinstance(also, dict):
        raise ValueError("cursor `through` is not a time or `also` is not an object")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in also.items()):
        raise ValueError("cursor `also` is not partition key -> last modified time")
    return Cursor(through, also)


def plan_tick(
    partitions: list[WarehousePartition],
    cursor: Cursor,
    extracted_at: Mapping[str, datetime],
    now: datetime,
    limit: int = MAX_RUN_REQUESTS_PER_TICK,
) -> TickPlan:
    """Decide which days to extract: changed since the cursor and not extracted since, oldest first, at most `limit`.

    Args:
        partitions: What the warehouse reports now.
        cursor: Where the previous tick left off.
        extracted_at: Latest `interactions` materialization time per partition key: for every day extracted
            at all, at least for the days `changed_since` returns (others only need to be present).
        now: Current time; days after the last complete one (today) are not partitions yet.
        limit: Most run requests in one tick.

    Returns:
        The changes to request and the next cursor. The watermark only passes days that were requested
        or are up to date; days left for later (over the limit, or today until it completes) hold it back.
    """
    changes: list[PartitionChange] = []
    held_back: list[str] = []  # modification times the watermark must not pass yet
    handled: list[tuple[str, str]] = []  # (key, modified) requested earlier, now, or already extracted
    ignored = up_to_date = 0
    with dg.partition_loading_context(effective_dt=now):
        last_key = daily_partitions.get_last_partition_key()
        for partition in changed_since(partitions, cursor, set(extracted_at)):
            key = partition.partition_key
            modified = _iso(partition.last_modified_time)
            if not daily_partitions.has_partition_key(key):
                # Before the partitions' start or malformed: never a run. Today: a run once it is complete.
                ignored += 1
                if last_key is not None and key > last_key and _is_day(key):
                    held_back.append(modified)
                continue
            if cursor.also.get(key) == modified:
                handled.append((key, modified))
                continue
            extracted = extracted_at.get(key)
            if extracted is not None and _iso(extracted) >= modified:
                up_to_date += 1
                handled.append((key, modified))
                continue
            changes.append(PartitionChange(key, modified, "new_partition" if extracted is None else "late_data"))
    changes.sort(key=lambda change: (change.last_modified, change.partition_key))
    batch, rest = changes[:limit], changes[limit:]
    handled += [(change.partition_key, change.last_modified) for change in batch]
    held_back += [change.last_modified for change in rest]
    limit_time = min(held_back, default=None)
    passable = [modified for _, modified in handled if limit_time is None or modified < limit_time]
    candidates: list[str] = [*passable, *([cursor.through] if cursor.through else [])]
    through: str | None = max(candidates) if candidates else None
    also = {key: modified for key, modified in handled if through is None or modified > through}
    return TickPlan(
        changes=batch, deferred=len(rest), ignored=ignored, up_to_date=up_to_date, cursor=Cursor(through, also)
    )


def changed_since(
    partitions: list[WarehousePartition], cursor: Cursor, extracted: set[str]
) -> list[WarehousePartition]:
    """The partitions last modified after the cursor's watermark, and any never extracted at all.

    The second part keeps a day whose modification time is not after the watermark (a warehouse clock
    behind, an emulator's coarse times) from being missed.
    """
    return [
        p
        for p in partitions
        if cursor.through is None or _iso(p.last_modified_time) > cursor.through or p.partition_key not in extracted
    ]


def _is_day(key: str) -> bool:
    try:
        datetime.strptime(key, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def latest_extracts(instance: dg.DagsterInstance, keys: list[str]) -> dict[str, tuple[datetime, str]]:
    """Time and run id of the latest `interactions` materialization of each of `keys` that has one."""
    latest: dict[str, tuple[datetime, str]] = {}
    if not keys:
        return latest
    records_filter = dg.AssetRecordsFilter(asset_key=INTERACTIONS, asset_partitions=keys)
    page_cursor = None
    while True:
        page = instance.fetch_materializations(records_filter, limit=1000, cursor=page_cursor)
        for record in page.records:  # newest first: the first one per partition is its latest
            if record.partition_key is not None and record.partition_key not in latest:
                latest[record.partition_key] = (datetime.fromtimestamp(record.timestamp, UTC), record.run_id)
        if not page.has_more:
            return latest
        page_cursor = page.cursor


def build_new_interaction_partitions(settings: Settings) -> dg.SensorDefinition:
    """The `new_interaction_partitions` sensor, started as `RECSYS_AUTOMATION` says."""
    return dg.sensor(
        name="new_interaction_partitions",
        job=interactions_job,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        default_status=sensor_status(settings),
        description=(
            "Requests an interactions extract for each new day in the warehouse, and again for a day whose "
            f"data changed afterwards (late events); at most {MAX_RUN_REQUESTS_PER_TICK} runs per tick, oldest first."
        ),
    )(new_interaction_partitions)


def new_interaction_partitions(context: dg.SensorEvaluationContext, warehouse: Warehouse) -> Any:
    """One run per new or late-changed warehouse day, keyed by the day and its modification time."""
    try:
        cursor = parse_cursor(context.cursor)
    except ValueError as exc:
        # Run keys and materialization records still prevent duplicate extracts: starting over is safe.
        context.log.warning(f"unreadable cursor ({exc}); starting from an empty one")
        cursor = Cursor()

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

    extracted = context.instance.get_materialized_partitions(INTERACTIONS)
    changed = [partition.partition_key for partition in changed_since(partitions, cursor, extracted)]
    times = {key: at for key, (at, _) in latest_extracts(context.instance, changed).items()}
    # Extracted days outside `changed` only need to be known as extracted: their time is not consulted.
    extracted_at = {key: times.get(key, datetime.min.replace(tzinfo=UTC)) for key in extracted} | times
    plan = plan_tick(partitions, cursor, extracted_at, datetime.now(UTC))
    if plan.ignored:
        context.log.info(f"ignored {plan.ignored} warehouse partitions outside the daily partitions (e.g. today)")
    if plan.up_to_date:
        context.log.info(f"{plan.up_to_date} changed days are already extracted since their last change")
    if not plan.changes:
        reason = dg.SkipReason(f"no new or changed days among {len(partitions)} partitions of {warehouse.table_ref}")
        if plan.cursor != cursor:
            return dg.SensorResult(skip_reason=reason, cursor=plan.cursor.encode())
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
    return dg.SensorResult(run_requests=run_requests, cursor=plan.cursor.encode())
