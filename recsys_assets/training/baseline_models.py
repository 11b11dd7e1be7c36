"""The baselines every selected model must beat, fitted on each protocol's training matrix."""

import dagster as dg

from recsys_assets.asset_attributes import GROUP, asset_attributes
from recsys_assets.domain import storage
from recsys_assets.domain.families.registry import BASELINES, new_model
from recsys_assets.domain.splitting import TrainingSet
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.step_errors import guarded_step


@dg.asset(
    partitions_def=daily_partitions,
    deps=["training_set"],
    group_name=GROUP,
    **asset_attributes(extra_kinds=("python", "scipy")),
)
@guarded_step
def baseline_models(context: dg.AssetExecutionContext, artifacts: ArtifactStore) -> dg.MaterializeResult:
    """Popularity and BM25 item-kNN baselines, fitted on each protocol's training matrix."""
    data = TrainingSet.load(artifacts.layout_of(context, "training_set").training_set(context.partition_key))
    files = artifacts.layout(context.run).baseline_models(context.partition_key)
    for protocol, split in data.protocols.items():
        for name, (family, params) in BASELINES.items():
            model = new_model(family, params).fit(split.train, split.train_ages)
            storage.write_bytes(files.model(f"{name}_{protocol}"), model.to_bytes())
    return dg.MaterializeResult(
        metadata={
            "baselines": "popularity, item_knn (BM25, 100 neighbours)",
            "protocols": ", ".join(data.protocols),
            "path": dg.MetadataValue.path(files.folder),
        }
    )
