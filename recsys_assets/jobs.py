"""Asset jobs: the daily extract and the retrain of everything downstream of it."""

import dagster as dg

from recsys_assets.partitions import daily_partitions

interactions_job = dg.define_asset_job(
    "interactions_job",
    selection=dg.AssetSelection.assets("interactions"),
    partitions_def=daily_partitions,
    description="Extract one day of interactions from the warehouse.",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets("interactions").downstream(include_self=False),
    partitions_def=daily_partitions,
    description="Rebuild the training set, retrain, evaluate, bundle and release for one partition.",
)
