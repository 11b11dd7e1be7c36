"""The daily partitioning shared by every asset in the graph."""

import dagster as dg

from recsys_assets.settings import SETTINGS

daily_partitions = dg.DailyPartitionsDefinition(start_date=SETTINGS.partitions_start, timezone="UTC")
