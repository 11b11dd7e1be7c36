"""Asset jobs: the daily extract and the retrain of everything downstream of it."""

import dagster as dg

# Tag on every automatically started run saying what started it (schedule name or sensor reason).
TRIGGER_TAG = "recsys/trigger"

interactions_job = dg.define_asset_job(
    "interactions_job",
    selection=dg.AssetSelection.assets("interactions"),
    description="Extract one day of interactions from the warehouse.",
)

retrain_job = dg.define_asset_job(
    "retrain_job",
    selection=dg.AssetSelection.assets("interactions").downstream(include_self=False),
    description="Rebuild the training set, retrain, evaluate, bundle and release for one partition.",
)
