"""The Dagster code location: every asset, check, job, schedule, sensor and resource.

`defs` is built when Dagster loads the location, not when this module is imported: importing it
builds no resource, and the settings are read once, here, and passed to what depends on them.
"""

import dagster as dg

from recsys_assets.asset_attributes import with_source_links
from recsys_assets.assets import ASSETS
from recsys_assets.freshness import FRESHNESS_CHECKS
from recsys_assets.jobs import delivery_job, interactions_job, retrain_job
from recsys_assets.resources import build_resources
from recsys_assets.retention import gc_job
from recsys_assets.schedules import build_schedules
from recsys_assets.sensors import build_sensors
from recsys_assets.settings import process_settings

__all__ = ["ASSETS", "defs"]


@dg.definitions
def defs() -> dg.Definitions:
    """The code location, for this process's settings."""
    settings = process_settings()
    return dg.Definitions(
        assets=with_source_links(ASSETS),
        asset_checks=FRESHNESS_CHECKS,
        jobs=[interactions_job, retrain_job, delivery_job, gc_job],
        schedules=build_schedules(settings),
        sensors=build_sensors(settings),
        resources=build_resources(settings),
        # One process for the whole run: the steps are short and a Python start per step costs more
        # than it buys here (figures in the README). Heavy training leaves the process through Pipes.
        executor=dg.in_process_executor,
    )
