"""When a retrain is skipped as unchanged: the rule, and the same rule judged before anything is rebuilt.

`trained_model` skips a retrain whose training set and item features are the versions its partition's
last (released) retrain was made from (`skip_reason`). By then the run has rebuilt them into its own
folders, only to find them unchanged. `unchanged_retrain` decides the same question earlier, in `items`
(the first step of `retrain_job`), from what each build is made of, its **recipe**:

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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import dagster as dg
from pydantic import BaseModel, ValidationError

from recsys_assets.domain.params import ItemFeatureParams, SelectionParams, SplitParams
from recsys_assets.partitions import TRAINING_WINDOW, daily_partitions

M = TypeVar("M", bound=BaseModel)

# Run tag saying a retrain was skipped because nothing it depends on changed.
RETRAIN_TAG = "recsys/retrain"
SKIPPED_UNCHANGED = "skipped: unchanged"


def settings_hash(search: SelectionParams) -> str:
    """Short hash of the search settings: a retrain with other settings is not the same retrain."""
    return hashlib.sha256(json.dumps(search.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:16]


# Data version of an input that was never materialized, as recorded.
NO_VERSION = "none"


@dataclass(frozen=True)
class LastRetrain:
    """What the instance recorded of this partition's last materialized retrain."""

    run_id: str
    # The inputs its materialization recorded (None where it recorded none), by the names of `retrain_inputs`.
    inputs: dict[str, object]
    code_version: str | None
    # Whether the same run also materialized this partition's release.
    released: bool


def skip_reason(current: dict[str, str], last: LastRetrain | None, code_version: str | None) -> str | None:
    """Why this partition's retrain can be skipped, or None when it must run (the rule, without Dagster).

    It is skipped only when the last retrain of this partition reached its release in the same run and
    was made from the same inputs (`current`: training set and item features data versions, search
    settings) by the same code version.
    """
    if current["training_set"] == NO_VERSION or last is None or code_version is None:
        return None
    if last.code_version != code_version or last.inputs != current:
        return None
    if not last.released:
        return None  # the last retrain did not reach its release: do it again
    return (
        f"training set {current['training_set'][:12]}, item features {current['item_features'][:12]}, "
        f"code {code_version[:12]} and search settings are unchanged since run {last.run_id[:8]}, which released "
        "its model; materialize with force: true to retrain anyway"
    )


def last_retrain(
    instance: dg.DagsterInstance, key: str, asset_key: dg.AssetKey, names: Iterable[str]
) -> LastRetrain | None:
    """Partition `key`'s last materialization of `asset_key`, as `skip_reason` needs it (None: never materialized)."""
    previous = instance.get_latest_data_version_record(asset_key, partition_key=key)
    if previous is None or previous.asset_materialization is None:
        return None
    provenance = dg.DataProvenance.from_tags(previous.event_log_entry.tags or {})
    metadata = previous.asset_materialization.metadata
    released = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("model_release"), asset_partitions=[key]), limit=1
    ).records
    return LastRetrain(
        run_id=previous.run_id,
        inputs={name: metadata[name].value if name in metadata else None for name in names},
        code_version=None if provenance is None else provenance.code_version,
        released=bool(released) and released[0].run_id == previous.run_id,
    )


# Metadata key under which `training_set` and `item_features` record what they were made from.
RECIPE = "recipe"
INTERACTIONS = dg.AssetKey("interactions")
ITEMS = dg.AssetKey("items")
# The steps an early skip spares: the run must select them all (and not the extract) for it to apply.
SPARED = ("item_features", "training_set", "baseline_models", "trained_model")


def recipe(parts: Mapping[str, Any]) -> str:
    """A hash of what a build is made of: the builds are deterministic, so equal recipes give equal content hashes."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def window_keys_ending(partition_key: str) -> list[str]:
    """The partition keys of the interactions window that ends at `partition_key`, by `training_set`'s own mapping."""
    mapped = TRAINING_WINDOW.get_upstream_mapped_partitions_result_for_partitions(
        daily_partitions.subset_with_partition_keys([partition_key]), daily_partitions, daily_partitions
    )
    return sorted(mapped.partitions_subset.get_partition_keys())


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


def item_features_recipe(items: str, params: ItemFeatureParams, code: str | None) -> str:
    """What item features are made of: the catalogue snapshot, the feature settings, the code."""
    return recipe({"items": items, "features": params.model_dump(mode="json"), "code": code})


def code_version_of(context: dg.AssetExecutionContext, asset: str) -> str | None:
    """The code version the run's job gives `asset` (None when the job does not know it)."""
    graph = context.job_def.asset_layer.asset_graph
    key = dg.AssetKey(asset)
    return graph.get(key).code_version if graph.has(key) else None


def op_config(context: dg.AssetExecutionContext, op: str) -> dict[str, Any]:
    """`op`'s config as this run's run config gives it (the defaults are left to the caller)."""
    ops = (context.run.run_config or {}).get("ops")
    section = ops.get(op) if isinstance(ops, Mapping) else None
    raw = section.get("config") if isinstance(section, Mapping) else None
    return dict(raw) if isinstance(raw, Mapping) else {}


def validated(model: type[M], raw: Mapping[str, Any]) -> M | None:
    """`raw` as `model`, defaults where unset; None when it does not validate."""
    try:
        return model.model_validate(raw)
    except ValidationError:
        return None


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
    training = op_config(context, "trained_model")
    if training.get("force") or training.get("use_gpu"):
        return None  # forced, or the step refuses (CPU only): a skip would hide that
    search = validated(SelectionParams, {k: v for k, v in training.items() if k not in ("force", "use_gpu")})
    split = validated(SplitParams, op_config(context, "training_set"))
    features = validated(ItemFeatureParams, op_config(context, "item_features"))
    if search is None or split is None or features is None:
        return None  # the step refuses its config itself, with its message
    instance, key = context.instance, context.partition_key
    training_set = _built_version(
        instance,
        "training_set",
        key,
        training_set_recipe(
            instance,
            window_keys_ending(key),
            snapshot_version,
            split,
            code_version_of(context, "training_set"),
        ),
    )
    item_features = _built_version(
        instance,
        "item_features",
        key,
        item_features_recipe(snapshot_version, features, code_version_of(context, "item_features")),
    )
    if training_set is None or item_features is None:
        return None
    current = {
        "training_set": training_set,
        "item_features": item_features,
        "settings_hash": settings_hash(search),
    }
    code = code_version_of(context, "trained_model")
    reason = skip_reason(current, last_retrain(instance, key, dg.AssetKey("trained_model"), current), code)
    return None if reason is None else f"{reason} (judged before rebuilding: this run wrote nothing)"


def record_skip(context: dg.AssetExecutionContext, reason: str) -> None:
    """Say why this run left the retrain as it was: an observation on the step's asset and on `trained_model`
    (each asset's own event list then says why), and the run tag."""
    for asset in dict.fromkeys((context.asset_key, dg.AssetKey("trained_model"))):
        context.log_event(
            dg.AssetObservation(asset_key=asset, partition=context.partition_key, metadata={"skipped": reason})
        )
    context.instance.add_run_tags(context.run.run_id, {RETRAIN_TAG: SKIPPED_UNCHANGED})
