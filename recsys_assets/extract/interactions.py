"""The daily extract of interaction events from the warehouse, with its data-quality checks."""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from dagster._core.execution.context.metadata_logging import AssetMetadataHandle, OutputMetadataAccumulator
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.asset_checks import TargetMaterialization
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.domain import storage
from recsys_assets.domain.events import EVENTS_SCHEMA, rows_per_value
from recsys_assets.domain.layout import ArtifactLayout
from recsys_assets.domain.quality import EXTRACT_ROWS_PER_READ, ExtractCounts, ExtractSplit, store_extracts
from recsys_assets.domain.quality import baselines as day_baselines
from recsys_assets.domain.samples import markdown_sample
from recsys_assets.extract.checks import (
    INTERACTIONS_CHECKS,
    NO_NULL_IDS,
    NON_NEGATIVE_WEIGHTS,
    ROW_COUNT_STABLE,
    TIMESTAMPS_INSIDE_PARTITION,
)
from recsys_assets.memory import release_free_memory
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.warehouse import Warehouse
from recsys_assets.step_errors import guarded_step

# Dagster stores each check result in its own write (materializations are batched, check results are
# not): 4 results a day cost minutes on an 8,000-day history import. A range longer than a quarter
# (a history import, not a window or a backfill of missed days) gets one result per check for the range,
# naming its failed days; each day's materialization still carries its own numbers.
PER_DAY_RESULTS_MAX = 92

COLUMN_DESCRIPTIONS = {
    "user_id": "Who acted (an engineer).",
    "item_id": "What they acted on (a job).",
    "event_type": "view, bookmark, apply, or interaction for imported data.",
    "weight": "Strength of the event (a rating for imported data); never negative.",
    "event_ts": "When it happened, UTC; inside the partition's day.",
}
COLUMN_SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(field.name, str(field.type), description=COLUMN_DESCRIPTIONS[field.name])
        for field in EVENTS_SCHEMA
    ]
)


class ExtractConfig(dg.Config):
    max_invalid_share: float = Field(
        default=0.01,
        ge=0,
        le=1,
        description="Largest share of malformed rows a partition may have before its check fails.",
    )
    collapse_ratio: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Warn when a day has fewer rows than this times the median of the previous 7 days.",
    )
    history_days: int = Field(
        default=7, ge=1, le=90, description="Previous extracted days the row-count check compares with."
    )
    rows_per_read: int = Field(
        default=EXTRACT_ROWS_PER_READ,
        ge=1,
        description="Rows read from the warehouse at once (whole days; a larger day is read alone): what bounds "
        "this step's memory on a long range.",
    )


def _previous_row_counts(layout: ArtifactLayout, partition_key: str, days: int) -> dict[str, int]:
    """Row counts of the extracts of the `days` days before `partition_key`, read from Parquet footers only."""
    first = date.fromisoformat(partition_key)
    counts = {}
    for back in range(1, days + 1):
        day = (first - timedelta(days=back)).isoformat()
        try:
            data = storage.read_bytes(layout.interactions(day).events)
        except FileNotFoundError:
            continue
        counts[day] = pq.read_metadata(pa.BufferReader(data)).num_rows
    return counts


def _day_metadata(split: ExtractSplit, layout: ArtifactLayout) -> dict[str, dict[str, Any]]:
    """Each day's own numbers and folder: what that day's materialization shows, whatever the range run or read."""
    metadata = {}
    for day, (key, lo, hi) in zip(split.days, split.day_bounds, strict=True):  # one entry per day, not per row
        rows = split.valid.slice(lo, hi - lo)
        metadata[key] = {
            "dagster/row_count": hi - lo,
            "rows_rejected": day.rows - (hi - lo),
            "users": pc.count_distinct(rows["user_id"]).as_py(),
            "items": pc.count_distinct(rows["item_id"]).as_py(),
            "event_types": dg.MetadataValue.json(rows_per_value(rows["event_type"])),
            "path": dg.MetadataValue.path(layout.interactions(key).folder),
            "sample": dg.MetadataValue.md(markdown_sample(rows)),
        }
    return metadata


def _add_metadata_per_day(context: dg.AssetExecutionContext, metadata_by_day: dict[str, dict[str, Any]]) -> None:
    """Give each day of the run's range its own materialization metadata, as `add_asset_metadata(partition_key=)`.

    The public call re-lists the whole range to validate its key and copies every day's metadata so
    far on each call: quadratic, about 40 s for an 8,000-day history import. The days here are the
    run's own keys, so this adds them to Dagster's metadata accumulator in one pass (tested against
    the pinned Dagster version in recsys_assets_tests/extract/test_range_runs.py).
    """
    if not set(metadata_by_day) <= set(context.partition_keys):
        raise ValueError("metadata for a day this run does not materialize")
    step = context._step_execution_context
    accumulated = dict(step._metadata_accumulator.per_output_metadata)
    for key, metadata in metadata_by_day.items():
        handle = AssetMetadataHandle(asset_key=context.asset_key, partition_key=key)
        accumulated[handle] = {**accumulated.get(handle, {}), **metadata}
    step._metadata_accumulator = OutputMetadataAccumulator(per_output_metadata=accumulated)


def _targets(context: dg.AssetExecutionContext) -> dict[str, TargetMaterialization]:
    """This run's materialization of each day, which that day's check results point at."""
    records = context.instance.get_records_for_run(
        context.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    targets = {}
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is not None and event.asset_key == context.asset_key and event.partition is not None:
            targets[event.partition] = TargetMaterialization(
                run_id=entry.run_id, storage_id=record.storage_id, timestamp=entry.timestamp
            )
    return targets


def _day_results(
    context: dg.AssetExecutionContext,
    config: ExtractConfig,
    split: ExtractCounts,
    targets: dict[str, TargetMaterialization],
    baselines: dict[str, float | None],
) -> Iterator[dg.AssetCheckEvaluation | dg.AssetCheckResult | dg.Output]:
    """Every selected check's result on each day of the run, then its step output; one result for a long range."""
    keys, limit = context.partition_keys, config.max_invalid_share
    verdicts = {
        NO_NULL_IDS: lambda day: (day, limit),
        NON_NEGATIVE_WEIGHTS: lambda day: (day, limit),
        TIMESTAMPS_INSIDE_PARTITION: lambda day: (split, keys, limit),
        ROW_COUNT_STABLE: lambda day: (day.day, split.rows_per_day[day.day], baselines[day.day], config.collapse_ratio),
    }
    for check, arguments in verdicts.items():
        if not check.selected(context):
            continue
        if len(split.days) > PER_DAY_RESULTS_MAX:
            yield check.over_days([(day.day, check.verdict(*arguments(day))) for day in split.days])
            continue
        for day in split.days:
            yield check.on(day.day, targets.get(day.day), *arguments(day))
        yield check.done(context)


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=SERVICE_RETRY_POLICY,
    group_name=GROUP,
    metadata={"dagster/column_schema": COLUMN_SCHEMA},
    **asset_attributes("warehouse", extra_kinds=("parquet",)),
    check_specs=[check.spec for check in INTERACTIONS_CHECKS],
)
@guarded_step
def interactions(
    context: dg.AssetExecutionContext, config: ExtractConfig, warehouse: Warehouse, artifacts: ArtifactStore
) -> Iterator[dg.AssetCheckEvaluation | dg.AssetCheckResult | dg.MaterializeResult | dg.Output]:
    """Daily extract of user-item interaction events from the warehouse, one Parquet file per day."""
    keys = context.partition_keys
    layout = artifacts.layout(context.run)
    # A few days per read: a first run's backfill range is never held in this process at once; each
    # read's days get their metadata while its rows are held, and only the numbers are kept.
    by_day: dict[str, dict[str, Any]] = {}

    def logged(reads: Iterator[tuple[list[str], pa.Table]]) -> Iterator[tuple[list[str], pa.Table]]:
        # Each read said as it arrives, before its days are written: a long backfill shows its progress,
        # and a write that hangs is seen to follow a read that finished.
        for days, table in reads:
            context.log.info(f"read {table.num_rows:,} events for {days[0]}..{days[-1]} from {warehouse.table_ref}")
            yield days, table
            del table  # before the next read: never two reads' rows at once

    split = store_extracts(
        layout,
        logged(warehouse.read_days(keys, config.rows_per_read)),
        lambda part: by_day.update(_day_metadata(part, layout)),
    )
    if split.rows_rejected:
        by_day[keys[-1]]["rejected_rows_of_run"] = dg.MetadataValue.path(layout.interactions(keys[-1]).rejected)
    _add_metadata_per_day(context, by_day)

    # The materializations first (one per day, each with its day's numbers): each check result then
    # attaches to its day's materialization.
    yield dg.MaterializeResult(metadata={"source": warehouse.table_ref})
    targets = _targets(context)
    baselines = day_baselines(
        _previous_row_counts(layout, keys[0], config.history_days), split.rows_per_day, config.history_days
    )
    yield from _day_results(context, config, split, targets, baselines)
    # The next steps run in this process: a large extract's freed Arrow buffers must not stay in its
    # peak. A small one's are not worth the full garbage collection (0.1-0.2 s with the run's objects).
    if split.rows_read >= EXTRACT_ROWS_PER_READ:
        release_free_memory()
