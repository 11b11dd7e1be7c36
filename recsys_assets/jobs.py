"""Asset jobs: the daily extract and the retrain of everything downstream of it."""

import dagster as dg

from recsys_assets.delivery import DELIVERY_ASSETS
from recsys_assets.settings import Settings, process_settings

# Tag on every automatically started run saying what started it (schedule name or sensor reason).
TRIGGER_TAG = "recsys/trigger"
# The run queue's concurrency pool for training runs (`deploy/dagster.yaml` limits it to the Vertex quota).
POOL_TAG = "recsys/pool"
TRAINING_POOL = "vertex-training"
# A retrain still running after four hours is stuck (the longest measured one takes minutes): run
# monitoring cancels it, and the failure sensor reports it.
RETRAIN_MAX_RUNTIME_SECONDS = 4 * 60 * 60

interactions_job = dg.define_asset_job(
    "interactions_job",
    selection=dg.AssetSelection.assets("interactions"),
    description="Extract one day of interactions from the warehouse.",
)


def pool_tags(settings: Settings) -> dict[str, str]:
    """The training pool's tag when training runs on Vertex AI (its quota is what the pool limits), else none."""
    return {POOL_TAG: TRAINING_POOL} if settings.training_launcher == "vertex" else {}


retrain_job = dg.define_asset_job(
    "retrain_job",
    # The catalogue snapshot and its features are rebuilt with the model: new postings appear daily.
    selection=(
        dg.AssetSelection.assets("interactions").downstream(include_self=False)
        | dg.AssetSelection.assets("items", "item_features")
    )
    - dg.AssetSelection.assets(*DELIVERY_ASSETS),
    description="Rebuild the training set, retrain, evaluate, bundle and release for one partition.",
    tags={**pool_tags(process_settings()), "dagster/max_runtime": str(RETRAIN_MAX_RUNTIME_SECONDS)},
)

delivery_job = dg.define_asset_job(
    "delivery_job",
    selection=dg.AssetSelection.assets(*DELIVERY_ASSETS),
    description="Write the released champion's lists of one day to the warehouse and measure the day before's.",
)
