"""The training set: a rolling window of interactions turned into sparse matrices, split for each evaluation protocol.

Where each part runs: the warehouse runs the relational part (`pair_pipeline`: deduplication,
weights, minimums, labels, index) and writes the labelled pairs as Parquet shards; the training
launcher's child (local subprocess, Docker or Vertex AI) builds the matrices from them. This step
only launches both and records what they report, so its memory does not grow with the window.
"""

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pyarrow as pa

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.domain import storage
from recsys_assets.domain.layout import ArtifactLayout
from recsys_assets.domain.pair_pipeline import PairsFiles, PairsRequest
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.quality import EXTRACT_ROWS_PER_READ, store_extracts
from recsys_assets.domain.records import SplitRequest, TrainingSetSummary, Window
from recsys_assets.domain.reports import split_table
from recsys_assets.domain.splitting import GLOBAL_CUT, PER_USER, PROTOCOLS, small_holdouts
from recsys_assets.partitions import TRAINING_WINDOW, daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.training_launcher import TrainingLauncher, refusal
from recsys_assets.resources.warehouse import Warehouse
from recsys_assets.retrain_plan import RECIPE, items_version, training_set_recipe
from recsys_assets.step_errors import guarded_step


class TrainingSetConfig(dg.Config, SplitParams):
    """The split parameters, settable per run from the launchpad."""


def window_keys(context: dg.AssetExecutionContext) -> list[str]:
    """Partition keys of the interactions window that ends at this partition."""
    return list(context.asset_partition_keys_for_input("interactions"))


def _day_start(key: str) -> datetime:
    return datetime.combine(date.fromisoformat(key), datetime.min.time(), tzinfo=UTC)


def extract_missing_days(
    context: dg.AssetExecutionContext, warehouse: Warehouse, layout: ArtifactLayout, keys: list[str]
) -> list[str]:
    """Extract the window days that have no extract yet into the extract layout, and record them as `interactions`.

    Days already extracted are read as they are (never re-extracted), so the extracts stay the record
    of what every model was trained on.
    """
    missing = [key for key in keys if not storage.exists(layout.interactions(key).events)]
    # A few days per read, as the extract does: this process never holds a long run of missing days.
    counts = store_extracts(layout, warehouse.read_days(missing, EXTRACT_ROWS_PER_READ))
    for key in missing:
        context.log_event(
            dg.AssetMaterialization(
                asset_key="interactions",
                partition=key,
                description="extracted by training_set: the day was missing from its window",
                metadata={
                    "dagster/row_count": counts.rows_per_day[key],
                    "extracted_by": "training_set",
                    "source": warehouse.table_ref,
                    "path": dg.MetadataValue.path(layout.interactions(key).folder),
                },
            )
        )
    if missing:
        context.log.info(f"extracted {len(missing)} missing window days from {warehouse.table_ref}: {missing}")
    return missing


def catalogue_ids(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> pa.ChunkedArray | None:
    """Item ids of this partition's catalogue snapshot, or None when it was never built."""
    layout = artifacts.optional_layout_of(context, "items")
    if layout is None:
        context.log.warning("no catalogue snapshot for this partition: items unseen in training are dropped")
        return None
    return storage.table_from_bytes(storage.read_bytes(layout.items(context.partition_key).items))["item_id"]


@dg.asset(
    partitions_def=daily_partitions,
    ins={
        "interactions": dg.AssetIn(partition_mapping=TRAINING_WINDOW, dagster_type=dg.Nothing),
        "items": dg.AssetIn(dagster_type=dg.Nothing),
    },
    group_name=GROUP,
    **asset_attributes("warehouse", extra_kinds=("parquet", "scipy")),
)
@guarded_step
def training_set(
    context: dg.AssetExecutionContext,
    config: TrainingSetConfig,
    artifacts: ArtifactStore,
    warehouse: Warehouse,
    training_launcher: TrainingLauncher,
) -> dg.MaterializeResult:
    """Users x items confidence matrices over a rolling window, split for each evaluation protocol."""
    keys = window_keys(context)
    layout = artifacts.layout(context.run)
    params = SplitParams.model_validate(config.model_dump())
    # What this build is made of, as recorded before it extracts anything: the next run compares its own with it.
    made_of = training_set_recipe(
        context.instance,
        keys,
        items_version(context.instance, context.partition_key),
        params,
        context.assets_def.code_versions_by_key.get(context.asset_key),
    )
    extracted = extract_missing_days(context, warehouse, layout, keys)
    files = layout.training_set(context.partition_key)
    pairs_hash = warehouse.build_pairs(
        PairsRequest(
            start=_day_start(keys[0]),
            end=_day_start(keys[-1]) + timedelta(days=1),
            extracts=[layout.interactions(key).events for key in keys],
            params=params,
            catalogue_ids=catalogue_ids(context, artifacts),
            files=PairsFiles(files.folder),
            protocols=PROTOCOLS,
        )
    )
    context.log.info(f"{warehouse.table_ref} built the pairs of {keys[0]}..{keys[-1]} ({len(keys)} days)")
    request = SplitRequest(
        training_set=files.folder,
        params=params,
        window=Window(start=keys[0], end=keys[-1], days=len(keys)),
        partitions=keys,
        content_hash=pairs_hash,
    )
    # The matrices are built where the model is trained, from the pairs: never in this process.
    refused = refusal(training_launcher.launch(context, request.to_extras()))
    if refused is not None:
        # The data and the configuration decide this: a retry would fail the same way.
        raise dg.Failure(description=f"window {keys[0]}..{keys[-1]}: {refused}", allow_retries=False)
    summary = TrainingSetSummary.from_json(storage.read_bytes(files.summary))
    # A small holdout still trains and gates (the lifts' intervals show the noise); the step says so.
    small = small_holdouts(summary, params)
    for line in small:
        context.log.warning(f"window {keys[0]}..{keys[-1]}: {line}")
    per_user, cut = summary.protocols[PER_USER], summary.protocols[GLOBAL_CUT]
    context.log.info(f"training set: {summary.users:,} users, {summary.items:,} items, {per_user.train_pairs:,} pairs")
    return dg.MaterializeResult(
        # The content hash is the data version: an unchanged window lets the retrain below be skipped.
        data_version=dg.DataVersion(summary.content_hash),
        metadata={
            # Named as before the splits were per protocol, so the UI's plots of them go on.
            "dagster/row_count": per_user.train_pairs,
            "users": summary.users,
            "items": summary.items,
            "density": round(per_user.train_pairs / max(summary.users * summary.items, 1), 6),
            "holdout_users": per_user.holdout_users,
            "holdout_pairs": per_user.holdout_pairs,
            "holdout_pairs_cold_item": per_user.cold_item_pairs,
            "cut_holdout_pairs_cold_item": cut.cold_item_pairs,
            "cut_holdout_users": cut.holdout_users,
            "cut_days": cut.cut_days or params.cut_days,
            "small_holdouts": "; ".join(small) or "none",
            "splits": dg.MetadataValue.md(split_table(summary)),
            "events": summary.events,
            "duplicates_removed": summary.events - summary.events_deduplicated,
            "window": f"{keys[0]}..{keys[-1]} ({len(keys)} days)",
            "days_extracted_here": dg.MetadataValue.json(extracted),
            "content_hash": summary.content_hash,
            RECIPE: made_of,
            "pairs_built_by": warehouse.table_ref,
            "split_by": type(training_launcher).__name__,
            "path": dg.MetadataValue.path(files.folder),
        },
    )
