"""The daily partitioning shared by every asset in the graph: from the process's settings, read on import."""

import dagster as dg

from recsys_assets.settings import process_settings

daily_partitions = dg.DailyPartitionsDefinition(start_date=process_settings().first_partition, timezone="UTC")
