"""The selected recommender (trained out of process through Pipes) and the baselines it must beat."""

import dagster as dg
from pydantic import Field

from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.catalog import GROUP, asset_attributes
from recsys_assets.domain import storage
from recsys_assets.domain.families import BASELINES, new_model
from recsys_assets.domain.params import SelectionParams
from recsys_assets.domain.records import TrainingRequest
from recsys_assets.domain.splitting import PROTOCOLS, TrainingSet
from recsys_assets.partitions import daily_partitions
from recsys_assets.pipes.worker import TRAINING_REFUSED
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.training_launcher import TrainingLauncher


class SelectionConfig(dg.Config, SelectionParams):
    """The model search (families, budgets, protocol), settable per run from the launchpad."""

    use_gpu: bool = Field(default=False, description="Train on CUDA; the embedded default is CPU only.")


def item_features_folder(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> str | None:
    """This partition's item features folder, or None (and a warning) when they were never built."""
    try:
        return artifacts.layout_of(context, "item_features").item_features(context.partition_key).folder
    except dg.Failure:
        context.log.warning("no item features for this partition: the content families are left out")
        return None


@dg.asset(
    partitions_def=daily_partitions,
    deps=["training_set", "item_features"],
    group_name=GROUP,
    **asset_attributes("training_launcher", extra_kinds=("implicit",)),
    retry_policy=SERVICE_RETRY_POLICY,
)
def trained_model(
    context: dg.AssetExecutionContext,
    config: SelectionConfig,
    artifacts: ArtifactStore,
    training_launcher: TrainingLauncher,
) -> dg.MaterializeResult:
    """The best model family and parameters (Optuna search on validation), trained out of process through Pipes."""
    if config.use_gpu:
        raise dg.Failure(
            "use_gpu=True needs a CUDA build of implicit on the training machine; this launcher is CPU only",
            allow_retries=False,
        )
    request = TrainingRequest(
        training_set=artifacts.layout_of(context, "training_set").training_set(context.partition_key).folder,
        output=artifacts.layout(context.run).trained_model(context.partition_key).folder,
        search=SelectionParams.model_validate(config.model_dump(exclude={"use_gpu"})),
        item_features=item_features_folder(context, artifacts),
    )
    invocation = training_launcher.launch(context, request.to_extras())
    refusals = [
        message[TRAINING_REFUSED]
        for message in invocation.get_custom_messages()
        if isinstance(message, dict) and TRAINING_REFUSED in message
    ]
    if refusals:
        # Bad data or configuration: the same inputs fail the same way, so SERVICE_RETRY_POLICY must not retry.
        raise dg.Failure(description=f"training refused: {refusals[0]}", allow_retries=False)
    reported = invocation.get_materialize_result()
    return dg.MaterializeResult(
        metadata={
            **(reported.metadata or {}),
            "launcher": type(training_launcher).__name__,
            "image": training_launcher.image or "local",
            "path": dg.MetadataValue.path(request.output),
        }
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=["training_set"],
    group_name=GROUP,
    **asset_attributes(extra_kinds=("python", "scipy")),
)
def baseline_models(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> dg.MaterializeResult:
    """Popularity and BM25 item-kNN baselines, fitted on each protocol's training matrix."""
    data = TrainingSet.load(artifacts.layout_of(context, "training_set").training_set(context.partition_key))
    files = artifacts.layout(context.run).baseline_models(context.partition_key)
    for protocol in PROTOCOLS:
        split = data.protocol(protocol)
        for name, (family, params) in BASELINES.items():
            model = new_model(family, params).fit(split.train, split.train_ages)
            storage.write_bytes(files.model(f"{name}_{protocol}"), model.to_bytes())
    return dg.MaterializeResult(
        metadata={
            "baselines": "popularity, item_knn (BM25, 100 neighbours)",
            "protocols": ", ".join(PROTOCOLS),
            "path": dg.MetadataValue.path(files.folder),
        }
    )
