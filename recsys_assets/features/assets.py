"""The training set: a rolling window of interactions turned into sparse matrices and a holdout."""

import dagster as dg
import pyarrow as pa

from recsys_assets.domain import storage
from recsys_assets.domain.events import EVENTS_SCHEMA
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.records import TrainingSetSummary, Window
from recsys_assets.domain.splitting import build_training_set, content_hash
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.settings import SETTINGS

WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-(SETTINGS.training_window_days - 1), end_offset=0, allow_nonexistent_upstream_partitions=True
)


class TrainingSetConfig(dg.Config, SplitParams):
    """The split parameters, settable per run from the launchpad."""


def window_keys(context: dg.AssetExecutionContext) -> list[str]:
    """Partition keys of the interactions window that ends at this partition."""
    return list(context.asset_partition_keys_for_input("interactions"))


@dg.asset(
    partitions_def=daily_partitions,
    ins={"interactions": dg.AssetIn(partition_mapping=WINDOW, dagster_type=dg.Nothing)},
    group_name="features",
    kinds={"duckdb", "scipy"},
)
def training_set(
    context: dg.AssetExecutionContext, config: TrainingSetConfig, artifacts: ArtifactStore
) -> dg.MaterializeResult:
    """Users x items confidence matrices over a rolling window, split per user by time for evaluation."""
    keys = window_keys(context)
    layout = artifacts.layout(context.run)
    tables, missing = [], []
    for key in keys:
        try:
            tables.append(storage.table_from_bytes(storage.read_bytes(layout.interactions(key).events)))
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
    data = build_training_set(events, SplitParams.model_validate(config.model_dump()))
    counts = data.counts
    if counts.train_pairs == 0 or counts.holdout_users == 0:
        raise dg.Failure(
            description=(
                f"the window {keys[0]}..{keys[-1]} leaves no trainable data after filtering "
                f"({counts.model_dump()}); widen RECSYS_TRAINING_WINDOW_DAYS or lower the activity minimums"
            )
        )
    files = layout.training_set(context.partition_key)
    payloads = data.to_files(files)
    summary = TrainingSetSummary(
        **counts.model_dump(),
        window=Window(start=keys[0], end=keys[-1], days=len(keys)),
        partitions=keys,
        content_hash=content_hash(payloads),
    )
    for uri, payload in payloads.items():
        storage.write_bytes(uri, payload)
    storage.write_bytes(files.summary, summary.to_json())  # last: marks a complete set
    context.log.info(f"training set: {summary.users:,} users, {summary.items:,} items, {summary.train_pairs:,} pairs")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": summary.train_pairs,
            "users": summary.users,
            "items": summary.items,
            "density": summary.density,
            "holdout_users": summary.holdout_users,
            "holdout_pairs": summary.holdout_pairs,
            "events": summary.events,
            "duplicates_removed": summary.events - summary.events_deduplicated,
            "window": f"{keys[0]}..{keys[-1]} ({len(keys)} days)",
            "content_hash": summary.content_hash,
            "path": dg.MetadataValue.path(files.folder),
        }
    )
