"""The Dagster code location: every asset, check, job, schedule, sensor and resource."""

import dagster as dg

from recsys_assets.assets import ASSETS
from recsys_assets.jobs import interactions_job, retrain_job
from recsys_assets.resources import build_resources
from recsys_assets.schedules import schedules
from recsys_assets.sensors import sensors

__all__ = ["ASSETS", "defs"]

defs = dg.Definitions(
    assets=ASSETS,
    jobs=[interactions_job, retrain_job],
    schedules=schedules,
    sensors=sensors,
    resources=build_resources(),
    # One process for the whole run: the steps are short and a Python start per step costs more
    # than it buys here (figures in the README). Heavy training leaves the process through Pipes.
    executor=dg.in_process_executor,
)
