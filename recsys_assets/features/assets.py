"""The training set: a rolling window of interactions turned into sparse matrices and a holdout."""

import dagster as dg
import pyarrow as pa
from pydantic import Field

from recsys_assets import storage
from recsys_assets.extract.assets import EVENTS_FILE
from recsys_assets.features.training_set import (
    SUMMARY_FILE,
    SplitParams,
    build_training_set,
    content_hash,
)
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.schema import EVENT_TYPE_WEIGHTS, EVENTS_SCHEMA
from recsys_assets.settings import SETTINGS

WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-(SETTINGS.training_window_days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)


class TrainingSetConfig(dg.Config):
    event_type_weights: dict[str, float] = Field(
        default=EVENT_TYPE_WEIGHTS, description="Confidence multiplier per event type."
    )
    default_event_weight: float = Field(default=1.0, description="Multiplier for event types not listed.")
    min_user_items: int = Field(default=3, ge=2, description="Users with fewer distinct items are dropped.")
    min_item_users: int = Field(default=3, ge=1, description="Items with fewer distinct users are dropped.")
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1, description="Share of each user's most recent items held out.")
    validation_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="Share of the remaining items used to tune hyperparameters."
    )


def window_keys(context: dg.AssetExecutionContext) -> list[str]:
    """Partition keys of the interactions window that ends at this partition."""
    return list(context.asset_partition_keys_for_input("interactions"))


@dg.asset(
    partitions_def=daily_partitions,
    ins={"interactions": dg.AssetIn(partition_mapping=WINDOW, dagster_type=dg.Nothing)},
    group_name="features",
    kinds={"duckdb", "scipy"},
)
def training_set(context: dg.AssetExecutionContext, config: TrainingSetConfig, artifacts: ArtifactStore):
    """Users x items confidence matrices over a rolling window, split per user by time for evaluation."""
    keys = window_keys(context)
    tables, missing = [], []
    for key in keys:
        try:
            tables.append(storage.table_from_bytes(storage.read_bytes(artifacts.uri("interactions", key, EVENTS_FILE))))
        except FileNotFoundError:
            missing.append(key)
    if missing:
        raise dg.Failure(
            description=(
                f"{len(missing)} of {len(keys)} interactions partitions in the training window are not extracted: "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}. Materialize them first, e.g. "
                f"`dagster asset materialize -m recsys_assets.definitions --select interactions "
                f"--partition-range {missing[0]}...{missing[-1]}`"
            ),
            metadata={"missing_partitions": dg.MetadataValue.json(missing)},
        )
    events = pa.concat_tables([t.cast(EVENTS_SCHEMA) for t in tables]) if tables else EVENTS_SCHEMA.empty_table()
    context.log.info(f"read {events.num_rows:,} events from {len(keys)} daily extracts ({keys[0]}..{keys[-1]})")
    data = build_training_set(
        events,
        SplitParams(
            event_type_weights=config.event_type_weights,
            default_event_weight=config.default_event_weight,
            min_user_items=config.min_user_items,
            min_item_users=config.min_item_users,
            holdout_fraction=config.holdout_fraction,
            validation_fraction=config.validation_fraction,
        ),
    )
    if data.train.nnz == 0 or data.summary["holdout_users"] == 0:
        raise dg.Failure(
            description=(
                f"the window {keys[0]}..{keys[-1]} leaves no trainable data after filtering "
                f"({data.summary}); widen RECSYS_TRAINING_WINDOW_DAYS or lower the activity minimums"
            )
        )
    files = data.to_files()
    summary = {
        **data.summary,
        "window": {"start": keys[0], "end": keys[-1], "days": len(keys)},
        "partitions": keys,
        "content_hash": content_hash(files),
    }
    base = artifacts.uri("training_set", context.partition_key)
    for name, payload in files.items():
        storage.write_bytes(storage.join(base, name), payload)
    storage.write_json(storage.join(base, SUMMARY_FILE), summary)  # last: marks a complete set
    context.log.info(f"training set: {summary['users']:,} users, {summary['items']:,} items, {summary['train_pairs']:,} pairs")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary["train_pairs"],
            "users": summary["users"],
            "items": summary["items"],
            "density": summary["density"],
            "holdout_users": summary["holdout_users"],
            "holdout_pairs": summary["holdout_pairs"],
            "events": summary["events"],
            "duplicates_removed": summary["events"] - summary["events_deduplicated"],
            "window": f"{keys[0]}..{keys[-1]} ({len(keys)} days)",
            "content_hash": summary["content_hash"],
            "path": dg.MetadataValue.path(base),
        }
    )
