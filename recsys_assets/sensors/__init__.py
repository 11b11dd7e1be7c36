"""Sensors: runs when the warehouse changes, and alerts when a run fails."""

from recsys_assets.sensors.alerts import run_failure_alerts
from recsys_assets.sensors.partitions import new_interaction_partitions

sensors = [new_interaction_partitions, run_failure_alerts]

__all__ = ["new_interaction_partitions", "run_failure_alerts", "sensors"]
