"""The baselines every selected model must beat, fitted on each protocol's training matrix."""

import dagster as dg

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.domain.records import BaselinesRequest
from recsys_assets.domain.splitting import PROTOCOLS
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.training_launcher import TrainingLauncher, refusal
from recsys_assets.step_errors import guarded_step


@dg.asset(
    partitions_def=daily_partitions,
    deps=["training_set"],
    group_name=GROUP,
    **asset_attributes(extra_kinds=("python", "scipy")),
)
@guarded_step
def baseline_models(
    context: dg.AssetExecutionContext, artifacts: ArtifactStore, training_launcher: TrainingLauncher
) -> dg.MaterializeResult:
    """Popularity and BM25 item-kNN baselines, fitted on each protocol's training matrix."""
    training_set = artifacts.layout_of(context, "training_set").training_set(context.partition_key)
    files = artifacts.layout(context.run).baseline_models(context.partition_key)
    request = BaselinesRequest(training_set=training_set.folder, output=files.folder)
    # Fitted where the model is trained: the matrices never enter this process.
    refused = refusal(training_launcher.launch(context, request.to_extras()))
    if refused is not None:
        raise dg.Failure(description=f"baselines refused: {refused}", allow_retries=False)
    return dg.MaterializeResult(
        metadata={
            "baselines": "popularity, item_knn (BM25, 100 neighbours)",
            "protocols": ", ".join(PROTOCOLS),
            "path": dg.MetadataValue.path(files.folder),
        }
    )
