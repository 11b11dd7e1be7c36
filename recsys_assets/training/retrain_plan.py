"""Whether a retrain run can stop at its first step: decided from what is recorded, before anything is rebuilt.

`trained_model` skips a retrain whose training set and item features are the versions its partition's
last (released) retrain was made from (`skip_reason`). By then the run has rebuilt them into its own
folders, only to find them unchanged. This decides the same question earlier, in `items` (the first
step of `retrain_job`), from what each build is made of, its **recipe**:

- `training_set`: the window's extracts (the storage id of each day's latest `interactions`
  materialization: a re-extract, a late row included, is a new one), the catalogue snapshot's content
  hash, the split settings and its code version;
- `item_features`: the catalogue snapshot's content hash, the feature settings and its code version.

Each build records its recipe as metadata. When the recipes this run would build from are those of
the latest `training_set` and `item_features` of the partition, the builds would give the same data
versions, and `skip_reason` is asked with those versions, this run's search settings and code
version: the rule, and its `force: true`, stay exactly as they were. A skip then materializes
nothing at all (Dagster skips every later step), and whatever reads an artefact later finds it in the
folders of the run that last materialized it (`ArtifactStore.layout_of`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, TypeVar

import dagster as dg
from pydantic import BaseModel, ValidationError

from recsys_assets.domain.params import SelectionParams, SplitParams
from recsys_assets.partitions import daily_partitions
from recsys_assets.settings import SETTINGS
from recsys_assets.training.trained_model import (
    NO_VERSION,
    RETRAIN_TAG,
    SKIPPED_UNCHANGED,
    SelectionConfig,
    last_retrain,
    settings_hash,
    skip_reason,
)

M = TypeVar("M", bound=BaseModel)

# Metadata key under which `training_set` and `item_features` record what they were made from.
RECIPE = "recipe"
INTERACTIONS = dg.AssetKey("interactions")
ITEMS = dg.AssetKey("items")
# The steps an early skip spares: the run must select them all (and not the extract) for it to apply.
SPARED = ("item_features", "training_set", "baseline_models", "trained_model")


def recipe(parts: Mapping[str, Any]) -> str:
    """A hash of what a build is made of: equal recipes make equal builds, which are deterministic (the same content hash)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def window_keys_ending(partition_key: str) -> list[str]:
    """The partition keys of the interactions window that ends at `partition_key` (as `training_set`'s input)."""
    end = date.fromisoformat(partition_key)
    first = daily_partitions.get_first_partition_key()
    start = (end - timedelta(days=SETTINGS.training_window_days - 1)).isoformat()
    start = max(start, first) if first else start
    return list(daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(start, partition_key)))


def items_version(instance: dg.DagsterInstance, partition_key: str) -> str:
    """The data version (content hash) of the partition's latest catalogue snapshot, or NO_VERSION."""
    record = instance.get_latest_data_version_record(ITEMS, partition_key=partition_key)
    return ((record.event_log_entry.tags or {}).get("dagster/data_version") if record else None) or NO_VERSION


def training_set_recipe(
    instance: dg.DagsterInstance, keys: list[str], items: str, params: SplitParams, code: str | None
) -> str:
    """What a training set over the window `keys` is made of (one query for every day's latest extract).

    Days a build extracts itself are recorded after it: their new materializations then differ from
    what it recorded, so the next run builds again rather than trust a recipe it cannot check.
    """
    extracts = instance.get_latest_storage_id_by_partition(
        INTERACTIONS, dg.DagsterEventType.ASSET_MATERIALIZATION, set(keys)
    )
    return recipe(
        {
            "extracts": {key: extracts.get(key) for key in keys},
            "items": items,
            "split": params.model_dump(mode="json"),
            "code": code,
        }
    )


def item_features_recipe(items: str, params: Mapping[str, Any], code: str | None) -> str:
    """What item features are made of: the catalogue snapshot, the feature settings, the code."""
    return recipe({"items": items, "features": dict(params), "code": code})


def code_version_of(context: dg.AssetExecutionContext, asset: str) -> str | None:
    """The code version the run's job gives `asset` (None when the job does not know it)."""
    graph = context.job_def.asset_layer.asset_graph
    key = dg.AssetKey(asset)
    return graph.get(key).code_version if graph.has(key) else None


def op_config(context: dg.AssetExecutionContext, op: str, model: type[M]) -> M | None:
    """`op`'s config in this run's run config as `model` (defaults where unset), or None when it does not validate."""
    ops = (context.run.run_config or {}).get("ops")
    section = ops.get(op) if isinstance(ops, Mapping) else None
    raw = section.get("config") if isinstance(section, Mapping) else None
    try:
        return model.model_validate(raw or {})
    except ValidationError:
        return None  # the step itself refuses it, with its message


def _built_version(instance: dg.DagsterInstance, asset: str, partition_key: str, wanted: str) -> str | None:
    """The data version of `asset`'s latest build of the partition when it was made from recipe `wanted`."""
    record = instance.get_latest_data_version_record(dg.AssetKey(asset), partition_key=partition_key)
    if record is None or record.asset_materialization is None:
        return None
    made_of = record.asset_materialization.metadata.get(RECIPE)
    if made_of is None or made_of.value != wanted:
        return None
    return (record.event_log_entry.tags or {}).get("dagster/data_version")


def run_assets(context: dg.AssetExecutionContext) -> set[dg.AssetKey]:
    """The assets this run executes: its selection (the job's when the run names none), less any steps left out."""
    run = context.run
    # A job's run names no selection (None), `materialize`'s an empty one: both mean the job's assets.
    keys = set(run.asset_selection or context.job_def.asset_layer.selected_asset_keys)
    if run.step_keys_to_execute is not None:  # a re-execution of some steps
        keys = {key for key in keys if key.to_python_identifier() in run.step_keys_to_execute}
    return keys


def unchanged_retrain(context: dg.AssetExecutionContext, snapshot_version: str) -> str | None:
    """Why this retrain run would be skipped as unchanged, judged before it builds anything; None: build.

    `snapshot_version` is the content hash of the catalogue snapshot this run just read. Only a run that
    selects every spared step and not the extract (whose new days would change the window) is judged.
    """
    selection = run_assets(context)
    if INTERACTIONS in selection or not all(dg.AssetKey(name) in selection for name in SPARED):
        return None
    from recsys_assets.features.item_features import ItemFeaturesConfig
    from recsys_assets.features.training_set import TrainingSetConfig

    search, split, features = (
        op_config(context, "trained_model", SelectionConfig),
        op_config(context, "training_set", TrainingSetConfig),
        op_config(context, "item_features", ItemFeaturesConfig),
    )
    if search is None or search.force or search.use_gpu or split is None or features is None:
        return None  # forced, or the step has something to say (a refusal) that a skip would hide
    instance, key = context.instance, context.partition_key
    training_set = _built_version(
        instance,
        "training_set",
        key,
        training_set_recipe(
            instance,
            window_keys_ending(key),
            snapshot_version,
            SplitParams.model_validate(split.model_dump()),
            code_version_of(context, "training_set"),
        ),
    )
    item_features = _built_version(
        instance,
        "item_features",
        key,
        item_features_recipe(snapshot_version, features.model_dump(), code_version_of(context, "item_features")),
    )
    if training_set is None or item_features is None:
        return None
    current = {
        "training_set": training_set,
        "item_features": item_features,
        "settings_hash": settings_hash(SelectionParams.model_validate(search.model_dump(exclude={"use_gpu", "force"}))),
    }
    code = code_version_of(context, "trained_model")
    reason = skip_reason(current, last_retrain(instance, key, dg.AssetKey("trained_model"), current), code)
    return None if reason is None else f"{reason} (judged before rebuilding: this run wrote nothing)"


def record_skip(context: dg.AssetExecutionContext, reason: str) -> None:
    """Say why nothing was built: an observation on the step's asset and on `trained_model`, and the run tag."""
    for asset in (context.asset_key, dg.AssetKey("trained_model")):
        context.log_event(
            dg.AssetObservation(asset_key=asset, partition=context.partition_key, metadata={"skipped": reason})
        )
    context.instance.add_run_tags(context.run.run_id, {RETRAIN_TAG: SKIPPED_UNCHANGED})
