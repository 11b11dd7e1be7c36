"""The trained recommender (ALS, trained out of process through Pipes) and its baselines."""

import dagster as dg
from pydantic import Field

from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.catalog import GROUP, asset_attributes
from recsys_assets.domain import storage
from recsys_assets.domain.params import ALSSearchSpace
from recsys_assets.domain.recommenders import item_knn_model, model_to_bytes, popularity_model
from recsys_assets.domain.records import TrainingRequest
from recsys_assets.domain.splitting import TrainingSet
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.training_launcher import TrainingLauncher


class ALSConfig(dg.Config, ALSSearchSpace):
    """The ALS search space and fixed settings, settable per run from the launchpad."""

    use_gpu: bool = Field(default=False, description="Train on CUDA; the embedded default is CPU only.")


@dg.asset(
    partitions_def=daily_partitions,
    deps=["training_set"],
    group_name=GROUP,
    **asset_attributes("training_launcher", extra_kinds=("implicit",)),
    retry_policy=SERVICE_RETRY_POLICY,
)
def als_model(
    context: dg.AssetExecutionContext, config: ALSConfig, artifacts: ArtifactStore, training_launcher: TrainingLauncher
) -> dg.MaterializeResult:
    """Implicit ALS factors, tuned on a validation split and trained out of process through Dagster Pipes."""
    if config.use_gpu:
        raise dg.Failure(
            "use_gpu=True needs a CUDA build of implicit on the training machine; this launcher is CPU only",
            allow_retries=False,
        )
    request = TrainingRequest(
        training_set=artifacts.layout_of(context, "training_set").training_set(context.partition_key).folder,
        output=artifacts.layout(context.run).als_model(context.partition_key).folder,
        search=ALSSearchSpace.model_validate(config.model_dump(exclude={"use_gpu"})),
    )
    invocation = training_launcher.launch(context, request.to_extras())
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
    """Popularity and BM25 item-kNN baselines the ALS model has to beat."""
    data = TrainingSet.load(artifacts.layout_of(context, "training_set").training_set(context.partition_key))
    files = artifacts.layout(context.run).baseline_models(context.partition_key)
    popularity = popularity_model(data.train)
    knn = item_knn_model(data.train)
    storage.write_bytes(files.model("popularity"), model_to_bytes(popularity))
    storage.write_bytes(files.model("item_knn"), model_to_bytes(knn))
    return dg.MaterializeResult(
        metadata={
            "baselines": "popularity, item_knn (BM25, 100 neighbours)",
            "item_knn_nonzeros": int(knn.similarity.nnz) if knn.similarity is not None else 0,
            "path": dg.MetadataValue.path(files.folder),
        }
    )
