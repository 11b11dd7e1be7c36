"""Sensors: new warehouse days start extracts; release pull requests move the champion."""

from recsys_assets.sensors.partitions import new_interaction_partitions
from recsys_assets.sensors.releases import release_pull_requests

sensors = [new_interaction_partitions, release_pull_requests]

__all__ = ["new_interaction_partitions", "release_pull_requests", "sensors"]
