"""Sensors: new warehouse days start extracts, release pull requests move the champion, failed runs alert,
the served lists follow the data and the champion, and their outcome triggers retrains."""

import dagster as dg

from recsys_assets.freshness import build_freshness_sensors
from recsys_assets.sensors.alerts import build_run_failure_alerts
from recsys_assets.sensors.delivery import build_outcome_retrain_trigger, build_served_lists
from recsys_assets.sensors.partitions import build_new_interaction_partitions
from recsys_assets.sensors.releases import build_release_pull_requests
from recsys_assets.settings import Settings


def build_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """Every sensor, started as `RECSYS_AUTOMATION` says."""
    return [
        build_new_interaction_partitions(settings),
        build_release_pull_requests(settings),
        build_run_failure_alerts(settings),
        build_served_lists(settings),
        build_outcome_retrain_trigger(settings),
        *build_freshness_sensors(settings),
    ]


__all__ = ["build_sensors"]
