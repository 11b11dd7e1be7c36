"""The daily extract of interaction events from the warehouse, with its data-quality checks."""

from collections.abc import Iterator
from datetime import date, timedelta

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
from recsys_assets.domain.quality import DayShare, collapsed_days, median_rows, store_extract
from recsys_assets.memory import release_free_memory
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.warehouse import Warehouse
from recsys_assets.step_errors import guarded_step

CHECK_NULL_IDS = "no_null_ids"
CHECK_IN_PARTITION = "timestamps_inside_partition"
CHECK_WEIGHTS = "non_negative_weights"
CHECK_ROW_COUNT = "row_count_stable"
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


def _share_check(check_name: str, share: DayShare, label: str, limit: float) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        passed=share.worst_share <= limit,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"worst day {share.worst_day}: {share.worst_rows} of {share.worst_day_rows} rows have {label} "
            f"({share.worst_share:.2%}; limit {limit:.2%}); {share.rows} in the run"
        ),
        metadata={
            "rows": share.rows,
            "worst_day": share.worst_day,
            "worst_share": round(share.worst_share, 6),
            "limit": limit,
        },
    )


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=SERVICE_RETRY_POLICY,
    group_name=GROUP,
    metadata={"dagster/column_schema": COLUMN_SCHEMA},
    **asset_attributes("warehouse", extra_kinds=("parquet",)),
    check_specs=[
        dg.AssetCheckSpec(
            CHECK_NULL_IDS,
            asset="interactions",
            partitions_def=daily_partitions,
            blocking=True,
            description="Share of rows with a null user or item id stays under the limit.",
        ),
        dg.AssetCheckSpec(
            CHECK_IN_PARTITION,
            asset="interactions",
            partitions_def=daily_partitions,
            blocking=True,
            description="Share of rows whose timestamp falls outside the partition stays under the limit.",
        ),
        dg.AssetCheckSpec(
            CHECK_WEIGHTS,
            asset="interactions",
            partitions_def=daily_partitions,
            blocking=True,
            description="Share of rows with a negative or missing weight stays under the limit.",
        ),
        dg.AssetCheckSpec(
            CHECK_ROW_COUNT,
            asset="interactions",
            partitions_def=daily_partitions,
            description="The day is neither empty nor collapsed against the previous days.",
        ),
    ],
)
@guarded_step
def interactions(
    context: dg.AssetExecutionContext, config: ExtractConfig, warehouse: Warehouse, artifacts: ArtifactStore
) -> Iterator[dg.AssetCheckResult | dg.MaterializeResult]:
    """Daily extract of user-item interaction events from the warehouse, one Parquet file per day."""
    window = context.partition_time_window
    keys = context.partition_keys
    layout = artifacts.layout(context.run)
    table = warehouse.read_events(window.start, window.end)
    context.log.info(f"read {table.num_rows:,} events for {keys[0]}..{keys[-1]} from {warehouse.table_ref}")

    split = store_extract(layout, table, keys)

    # The materialization first: each check result then attaches to this run's materialization.
    valid = split.valid
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": valid.num_rows,
            "rows_read": split.rows_read,
            "rows_rejected": split.rejected.num_rows,
            "users": pc.count_distinct(valid["user_id"]).as_py(),
            "items": pc.count_distinct(valid["item_id"]).as_py(),
            "event_types": dg.MetadataValue.json(rows_per_value(valid["event_type"])),
            **(
                {"rows_per_day": dg.MetadataValue.json(split.rows_per_day)}
                if len(keys) <= ROWS_PER_DAY_SHOWN
                else {"rows_per_day_summary": dg.MetadataValue.json(_summary(split.rows_per_day))}
            ),
            "source": warehouse.table_ref,
            "path": dg.MetadataValue.path(layout.interactions(keys[-1]).folder),
        }
    )
    yield _share_check(CHECK_NULL_IDS, split.null_ids, "null ids", config.max_invalid_share)
    yield _share_check(CHECK_WEIGHTS, split.bad_weights, "negative or missing weights", config.max_invalid_share)
    yield dg.AssetCheckResult(
        check_name=CHECK_IN_PARTITION,
        passed=split.share_outside <= config.max_invalid_share,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{split.rows_outside} of {split.rows_read} rows have timestamps outside {keys[0]}..{keys[-1]} "
            f"({split.share_outside:.2%}; limit {config.max_invalid_share:.2%})"
        ),
        metadata={
            "rows": split.rows_outside,
            "share": round(split.share_outside, 6),
            "limit": config.max_invalid_share,
        },
    )

    baseline = median_rows(_previous_row_counts(layout, keys[0], config.history_days))
    collapsed = collapsed_days(split.rows_per_day, baseline, config.collapse_ratio)
    yield dg.AssetCheckResult(
        check_name=CHECK_ROW_COUNT,
        passed=not collapsed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"empty or collapsed days: {', '.join(collapsed)}" if collapsed else "row counts look normal"),
        metadata={
            "median_previous_rows": baseline or 0,
            "min_rows": min(split.rows_per_day.values(), default=0),
        },
    )
    # The next steps run in this process: the range's Arrow buffers must not stay in its peak.
    del table, split, valid
    release_free_memory()
