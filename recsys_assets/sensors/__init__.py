"""Sensors that start runs when the warehouse changes."""

from recsys_assets.sensors.partitions import new_interaction_partitions

sensors = [new_interaction_partitions]

__all__ = ["new_interaction_partitions", "sensors"]
