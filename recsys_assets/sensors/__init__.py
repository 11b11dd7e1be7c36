"""Sensors: new warehouse days start extracts, release pull requests move the champion, failed runs alert."""

from recsys_assets.sensors.alerts import run_failure_alerts
from recsys_assets.sensors.partitions import new_interaction_partitions
from recsys_assets.sensors.releases import release_pull_requests

sensors = [new_interaction_partitions, release_pull_requests, run_failure_alerts]

__all__ = ["new_interaction_partitions", "release_pull_requests", "run_failure_alerts", "sensors"]
