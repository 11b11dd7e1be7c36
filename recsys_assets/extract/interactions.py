"""The daily extract of interaction events from the warehouse, with its data-quality checks."""

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.domain import storage
from recsys_assets.domain.events import EVENTS_SCHEMA, rows_per_value
from recsys_assets.domain.layout import ArtifactLayout
from recsys_assets.domain.quality import chunks, combine_splits, median_rows, store_extract
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

# Dagster copies a range run's metadata onto every day's materialization, so a map of every day's
# rows grows quadratically with the range (8,000 days: 8,000 copies of an 8,000-entry map). Longer
# ranges get a summary instead (each day's count stays in its extract file's Parquet footer).
ROWS_PER_DAY_SHOWN = 62

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


def _previous_row_counts(layout: ArtifactLayout, partition_key: str, days: int) -> list[int]:
    """Row counts of the extracts of the `days` days before `partition_key`, read from Parquet footers only."""
    first = date.fromisoformat(partition_key)
    counts = []
    for back in range(1, days + 1):
        try:
            data = storage.read_bytes(layout.interactions((first - timedelta(days=back)).isoformat()).events)
        except FileNotFoundError:
            continue
        counts.append(pq.read_metadata(pa.BufferReader(data)).num_rows)
    return counts


def _summary(rows_per_day: dict[str, int]) -> dict[str, int | str]:
    """Days, empty days and the smallest, median and largest day of a long range."""
    counts = sorted(rows_per_day.values())
    return {
        "days": len(counts),
        "empty_days": sum(1 for c in counts if c == 0),
        "min": counts[0] if counts else 0,
        "median": counts[len(counts) // 2] if counts else 0,
        "max": counts[-1] if counts else 0,
        "first_day": min(rows_per_day, default=""),
        "last_day": max(rows_per_day, default=""),
    }


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
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Daily extract of user-item interaction events from the warehouse, one Parquet file per day."""
    keys = context.partition_keys
    layout = artifacts.layout(context.run)
    # A few days per read: a long backfill range is never held in this process at once.
    parts, users, items, event_types = [], [], [], Counter()
    for days in chunks(keys):
        start = datetime.combine(date.fromisoformat(days[0]), datetime.min.time(), tzinfo=UTC)
        table = warehouse.read_events(start, start + timedelta(days=len(days)))
        part = store_extract(layout, table, days)
        users.append(pc.unique(part.valid["user_id"]))
        items.append(pc.unique(part.valid["item_id"]))
        event_types.update(rows_per_value(part.valid["event_type"]))
        # Only the statistics are kept: the rows are written, and holding them would hold the whole range.
        parts.append(dataclasses.replace(part, valid=part.valid.slice(0, 0), day_bounds=[]))
        del table, part
    split = combine_splits(parts)
    del parts
    valid_rows = sum(split.rows_per_day.values())
    context.log.info(f"read {split.rows_read:,} events for {keys[0]}..{keys[-1]} from {warehouse.table_ref}")

    # The materialization first: each check result then attaches to this run's materialization.
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": valid_rows,
            "rows_read": split.rows_read,
            "rows_rejected": split.rejected.num_rows,
            "users": pc.count_distinct(pa.chunked_array(users, pa.string())).as_py(),
            "items": pc.count_distinct(pa.chunked_array(items, pa.string())).as_py(),
            "event_types": dg.MetadataValue.json(dict(sorted(event_types.items()))),
            **(
                {"rows_per_day": dg.MetadataValue.json(split.rows_per_day)}
                if len(keys) <= ROWS_PER_DAY_SHOWN
                else {"rows_per_day_summary": dg.MetadataValue.json(_summary(split.rows_per_day))}
            ),
            "source": warehouse.table_ref,
            "path": dg.MetadataValue.path(layout.interactions(keys[-1]).folder),
        }
    )
    yield NO_NULL_IDS(split, config.max_invalid_share)
    yield NON_NEGATIVE_WEIGHTS(split, config.max_invalid_share)
    yield TIMESTAMPS_INSIDE_PARTITION(split, keys, config.max_invalid_share)
    baseline = median_rows(_previous_row_counts(layout, keys[0], config.history_days))
    yield ROW_COUNT_STABLE(split.rows_per_day, baseline, config.collapse_ratio)
    # The next steps run in this process: the range's Arrow buffers must not stay in its peak.
    del split, users, items
    release_free_memory()
