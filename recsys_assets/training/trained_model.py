"""The selected recommender, trained out of process through Pipes (skipped when nothing it depends on changed)."""

from collections.abc import Iterator

import dagster as dg
from pydantic import Field

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.domain.params import SelectionParams
from recsys_assets.domain.records import TrainingRequest
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.training_launcher import TrainingLauncher, refusal
from recsys_assets.retrain_plan import (
    NO_VERSION,
    last_retrain,
    record_skip,
    settings_hash,
    skip_reason,
)
from recsys_assets.step_errors import guarded_step


class SelectionConfig(dg.Config, SelectionParams):
    """The model search (families, budgets, protocol), settable per run from the launchpad."""

    use_gpu: bool = Field(default=False, description="Train on CUDA; the embedded default is CPU only.")
    force: bool = Field(
        default=False, description="Retrain even when the training set, code and settings are unchanged."
    )


# The inputs whose Dagster data versions decide whether a retrain can be skipped.
RETRAIN_INPUTS = ("training_set", "item_features")


def retrain_inputs(context: dg.AssetExecutionContext, settings: str) -> dict[str, str]:
    """What a retrain of this partition is made from, as its materialization records it.

    The data version (content hash) of the partition's latest training set and item features, and
    the search settings' hash: the next retrain compares its own with these to decide whether it
    can be skipped.
    """
    inputs: dict[str, str] = {}
    for name in RETRAIN_INPUTS:
        record = context.instance.get_latest_data_version_record(dg.AssetKey(name), partition_key=context.partition_key)
        version = (record.event_log_entry.tags or {}).get("dagster/data_version") if record else None
        inputs[name] = version or NO_VERSION
    return {**inputs, "settings_hash": settings}


def item_features_folder(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> str | None:
    """This partition's item features folder, or None (and a warning) when they were never built."""
    layout = artifacts.optional_layout_of(context, "item_features")
    if layout is None:
        context.log.warning("no item features for this partition: the content families are left out")
        return None
    return layout.item_features(context.partition_key).folder


@dg.asset(
    partitions_def=daily_partitions,
    deps=["training_set", "item_features"],
    group_name=GROUP,
    **asset_attributes("training_launcher", extra_kinds=("implicit",)),
    retry_policy=SERVICE_RETRY_POLICY,
    # No output when nothing changed: evaluation, bundle and release are then skipped too.
    output_required=False,
)
@guarded_step
def trained_model(
    context: dg.AssetExecutionContext,
    config: SelectionConfig,
    artifacts: ArtifactStore,
    training_launcher: TrainingLauncher,
) -> Iterator[dg.MaterializeResult]:
    """The best model family and parameters (Optuna search on validation), trained out of process through Pipes."""
    if config.use_gpu:
        raise dg.Failure(
            "use_gpu=True needs a CUDA build of implicit on the training machine; this launcher is CPU only",
            allow_retries=False,
        )
    search = SelectionParams.model_validate(config.model_dump(exclude={"use_gpu", "force"}))
    inputs = retrain_inputs(context, settings_hash(search))
    code = context.assets_def.code_versions_by_key.get(context.asset_key)
    reason = (
        None
        if config.force
        else skip_reason(inputs, last_retrain(context.instance, context.partition_key, context.asset_key, inputs), code)
    )
    if reason is not None:
        context.log.info(f"retrain skipped: {reason}")
        record_skip(context, reason)
        return
    request = TrainingRequest(
        training_set=artifacts.layout_of(context, "training_set").training_set(context.partition_key).folder,
        output=artifacts.layout(context.run).trained_model(context.partition_key).folder,
        search=search,
        item_features=item_features_folder(context, artifacts),
    )
    invocation = training_launcher.launch(context, request.to_extras())
    refused = refusal(invocation)
    if refused is not None:
        # Bad data or configuration: the same inputs fail the same way, so SERVICE_RETRY_POLICY must not retry.
        raise dg.Failure(description=f"training refused: {refused}", allow_retries=False)
    reported = invocation.get_materialize_result()
    yield dg.MaterializeResult(
        metadata={
            **(reported.metadata or {}),
            "launcher": type(training_launcher).__name__,
            "image": training_launcher.image or "local",
            # What the next retrain of this partition compares with to decide whether it can be skipped.
            **inputs,
            "path": dg.MetadataValue.path(request.output),
        }
    )
