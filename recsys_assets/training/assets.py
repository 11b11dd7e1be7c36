"""The trained recommender (ALS, trained out of process through Pipes) and its baselines."""

import dagster as dg
from pydantic import Field

from recsys_assets import storage, train
from recsys_assets.features.training_set import TrainingSet
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.training_launcher import TrainingLauncher
from recsys_assets.training.models import (
    als_from_bytes,
    item_knn_model,
    knn_from_bytes,
    model_to_bytes,
    popularity_model,
)

POPULARITY_FILE = "popularity.npz"
ITEM_KNN_FILE = "item_knn.npz"


class ALSConfig(dg.Config):
    factors: list[int] = Field(default=[16, 32, 64], description="Latent factor counts to try.")
    regularization: list[float] = Field(default=[0.1, 1.0], description="L2 regularisation values to try.")
    alpha: list[float] = Field(default=[1.0], description="Confidence scaling values to try (applied inside fit).")
    iterations: int = Field(default=15, ge=1)
    bm25_k1: float = Field(default=100.0, description="BM25 K1 for confidence weighting; 0 disables it.")
    bm25_b: float = Field(default=0.8)
    use_gpu: bool = Field(default=False, description="Train on CUDA; the embedded default is CPU only.")
    num_threads: int = Field(default=0, description="implicit's worker threads (0 = all cores); BLAS stays at 1.")
    random_state: int = Field(default=42)
    validation_k: int = Field(default=10, description="Cut-off of the validation NDCG used to pick hyperparameters.")


@dg.asset(
    partitions_def=daily_partitions,
    deps=["training_set"],
    group_name="training",
    kinds={"python"},
)
def als_model(
    context: dg.AssetExecutionContext, config: ALSConfig, artifacts: ArtifactStore, training_launcher: TrainingLauncher
):
    """Implicit ALS factors, tuned on a validation split and trained out of process through Dagster Pipes."""
    if config.use_gpu:
        raise dg.Failure("use_gpu=True needs a CUDA build of implicit on the training machine; this launcher is CPU only")
    extras = {
        "training_set_uri": artifacts.uri("training_set", context.partition_key),
        "output_uri": artifacts.uri("als_model", context.partition_key),
        "als_params": {
            "factors": config.factors[0], "regularization": config.regularization[0], "alpha": config.alpha[0],
            "iterations": config.iterations, "bm25_k1": config.bm25_k1, "bm25_b": config.bm25_b,
            "random_state": config.random_state, "num_threads": config.num_threads,
        },
        "search_grid": {"factors": config.factors, "regularization": config.regularization, "alpha": config.alpha},
        "k": config.validation_k,
    }
    invocation = training_launcher.launch(context, extras)
    reported = invocation.get_materialize_result()
    return dg.MaterializeResult(
        metadata={
            **(reported.metadata or {}),
            "launcher": type(training_launcher).__name__,
            "image": training_launcher.image or "local",
            "path": dg.MetadataValue.path(extras["output_uri"]),
        }
    )


@dg.asset(partitions_def=daily_partitions, deps=["training_set"], group_name="training", kinds={"python"})
def baseline_models(context: dg.AssetExecutionContext, artifacts: ArtifactStore):
    """Popularity and BM25 item-kNN baselines the ALS model has to beat."""
    data = TrainingSet.load(artifacts.uri("training_set", context.partition_key))
    popularity = popularity_model(data.train)
    knn = item_knn_model(data.train)
    storage.write_bytes(artifacts.uri("baseline_models", context.partition_key, POPULARITY_FILE), model_to_bytes(popularity))
    storage.write_bytes(artifacts.uri("baseline_models", context.partition_key, ITEM_KNN_FILE), model_to_bytes(knn))
    return dg.MaterializeResult(
        metadata={
            "baselines": "popularity, item_knn (BM25, 100 neighbours)",
            "item_knn_nonzeros": int(knn.similarity.nnz),
            "path": dg.MetadataValue.path(artifacts.uri("baseline_models", context.partition_key)),
        }
    )


def load_als(artifacts: ArtifactStore, partition_key: str):
    """The ALS model trained for `partition_key`."""
    return als_from_bytes(storage.read_bytes(artifacts.uri("als_model", partition_key, train.MODEL_FILE)))


def load_baselines(artifacts: ArtifactStore, partition_key: str) -> dict:
    """The baselines fitted for `partition_key`, by name."""
    read = lambda name: storage.read_bytes(artifacts.uri("baseline_models", partition_key, name))  # noqa: E731
    return {"popularity": als_from_bytes(read(POPULARITY_FILE)), "item_knn": knn_from_bytes(read(ITEM_KNN_FILE))}
