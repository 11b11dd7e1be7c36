"""The daily extract of interaction events from the warehouse, with its data-quality checks."""

import statistics
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from recsys_assets import storage
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.warehouse import Warehouse, day_of

EVENTS_FILE = "events.parquet"
REJECTED_FILE = "rejected.parquet"

EPOCH = date(1970, 1, 1)

CHECK_NULL_IDS = "no_null_ids"
CHECK_IN_PARTITION = "timestamps_inside_partition"
CHECK_WEIGHTS = "non_negative_weights"
CHECK_ROW_COUNT = "row_count_stable"


class ExtractConfig(dg.Config):
    max_invalid_share: float = Field(
        default=0.01, description="Largest share of malformed rows a partition may have before its check fails."
    )
    collapse_ratio: float = Field(
        default=0.5, description="Warn when a day has fewer rows than this times the median of the previous 7 days."
    )
    history_days: int = Field(default=7, description="Previous extracted days the row-count check compares with.")


def _previous_row_counts(artifacts: ArtifactStore, partition_key: str, days: int) -> list[int]:
    """Row counts of the extracts of the `days` days before `partition_key`, read from Parquet footers only."""
    first = date.fromisoformat(partition_key)
    counts = []
    for back in range(1, days + 1):
        try:
            data = storage.read_bytes(artifacts.uri("interactions", (first - timedelta(days=back)).isoformat(), EVENTS_FILE))
        except FileNotFoundError:
            continue
        counts.append(pq.read_metadata(pa.BufferReader(data)).num_rows)
    return counts


@dg.asset(
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    group_name="extract",
    kinds={"duckdb", "parquet"},
    check_specs=[
        dg.AssetCheckSpec(CHECK_NULL_IDS, asset="interactions", blocking=True,
                          description="Share of rows with a null user or item id stays under the limit."),
        dg.AssetCheckSpec(CHECK_IN_PARTITION, asset="interactions", blocking=True,
                          description="Share of rows whose timestamp falls outside the partition stays under the limit."),
        dg.AssetCheckSpec(CHECK_WEIGHTS, asset="interactions", blocking=True,
                          description="Share of rows with a negative or missing weight stays under the limit."),
        dg.AssetCheckSpec(CHECK_ROW_COUNT, asset="interactions",
                          description="The day is neither empty nor collapsed against the previous days."),
    ],
)
def interactions(
    context: dg.AssetExecutionContext, config: ExtractConfig, warehouse: Warehouse, artifacts: ArtifactStore
):
    """Daily extract of user-item interaction events from the warehouse, one Parquet file per day."""
    window = context.partition_time_window
    keys = context.partition_keys
    table = warehouse.read_events(window.start, window.end)
    context.log.info(f"read {table.num_rows:,} events for {keys[0]}..{keys[-1]} from {warehouse.table_ref}")

    # Work on epoch-day numbers: one vectorised pass classifies and splits every row.
    row_days = pc.fill_null(day_of(table["event_ts"]).cast(pa.int32()), -1).to_numpy(zero_copy_only=False)
    key_days = np.array([(date.fromisoformat(k) - EPOCH).days for k in keys])
    null_ids = pc.fill_null(pc.or_kleene(pc.is_null(table["user_id"]), pc.is_null(table["item_id"])), True)
    outside = ~np.isin(row_days, key_days)
    bad_weight = pc.fill_null(pc.less(table["weight"], 0.0), True)
    rejected = null_ids.to_numpy(zero_copy_only=False) | outside | bad_weight.to_numpy(zero_copy_only=False)

    order = np.argsort(row_days[~rejected], kind="stable")
    valid = table.filter(pa.array(~rejected)).take(order)
    valid_days = row_days[~rejected][order]
    bounds = zip(keys, np.searchsorted(valid_days, key_days, "left"), np.searchsorted(valid_days, key_days, "right"))
    rows_per_day = {}
    for key, lo, hi in bounds:
        # One write per day replaces the whole partition, so re-running is idempotent.
        storage.write_bytes(artifacts.uri("interactions", key, EVENTS_FILE), storage.table_to_bytes(valid.slice(lo, hi - lo)))
        rows_per_day[key] = int(hi - lo)
    n_rejected = int(rejected.sum())
    if n_rejected:
        # Quarantined, not dropped: the rows stay inspectable next to the extract.
        storage.write_bytes(
            artifacts.uri("interactions", keys[-1], REJECTED_FILE), storage.table_to_bytes(table.filter(pa.array(rejected)))
        )

    # Shares are judged per day: one broken day must not hide inside a multi-day backfill run.
    day_index = np.searchsorted(key_days, row_days)
    in_range = ~outside
    rows_in_day = np.bincount(day_index[in_range], minlength=len(keys))
    flagged = {
        CHECK_NULL_IDS: (null_ids.to_numpy(zero_copy_only=False), "null ids"),
        CHECK_WEIGHTS: (bad_weight.to_numpy(zero_copy_only=False), "negative or missing weights"),
    }
    for check_name, (flags, label) in flagged.items():
        per_day = np.bincount(day_index[in_range & flags], minlength=len(keys))
        shares = per_day / np.maximum(rows_in_day, 1)
        worst = int(np.argmax(shares)) if len(keys) else 0
        yield dg.AssetCheckResult(
            check_name=check_name,
            passed=bool(shares.max(initial=0.0) <= config.max_invalid_share),
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"worst day {keys[worst]}: {per_day[worst]} of {rows_in_day[worst]} rows have {label} "
                f"({shares[worst]:.2%}; limit {config.max_invalid_share:.2%}); {int(per_day.sum())} in the run"
            ),
            metadata={"rows": int(per_day.sum()), "worst_day": keys[worst], "worst_share": float(shares[worst])},
        )
    n_outside = int(outside.sum())
    share_outside = n_outside / max(table.num_rows, 1)
    yield dg.AssetCheckResult(
        check_name=CHECK_IN_PARTITION,
        passed=share_outside <= config.max_invalid_share,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"{n_outside} of {table.num_rows} rows have timestamps outside {keys[0]}..{keys[-1]} "
            f"({share_outside:.2%}; limit {config.max_invalid_share:.2%})"
        ),
        metadata={"rows": n_outside, "share": share_outside},
    )

    history = _previous_row_counts(artifacts, keys[0], config.history_days)
    baseline = statistics.median(history) if history else None
    collapsed = [k for k, n in rows_per_day.items() if n == 0 or (baseline and n < config.collapse_ratio * baseline)]
    yield dg.AssetCheckResult(
        check_name=CHECK_ROW_COUNT,
        passed=not collapsed,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"empty or collapsed days: {', '.join(collapsed)}" if collapsed else "row counts look normal"),
        metadata={"median_previous_rows": baseline or 0, "min_rows": min(rows_per_day.values(), default=0)},
    )

    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": valid.num_rows,
            "rows_read": table.num_rows,
            "rows_rejected": n_rejected,
            "users": pc.count_distinct(valid["user_id"]).as_py(),
            "items": pc.count_distinct(valid["item_id"]).as_py(),
            "event_types": dg.MetadataValue.json(
                {str(v["values"]): int(v["counts"]) for v in pc.value_counts(valid["event_type"]).to_pylist()}
            ),
            "rows_per_day": dg.MetadataValue.json(rows_per_day),
            "source": warehouse.table_ref,
            "path": dg.MetadataValue.path(artifacts.uri("interactions", keys[-1])),
        }
    )
