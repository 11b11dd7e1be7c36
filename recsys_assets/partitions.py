"""The daily partitioning shared by every asset in the graph: from the process's settings, read on import."""

import dagster as dg

from recsys_assets.settings import process_settings

daily_partitions = dg.DailyPartitionsDefinition(start_date=process_settings().first_partition, timezone="UTC")

# A training set's partition reads the interactions of the window of days that ends with it.
TRAINING_WINDOW = dg.TimeWindowPartitionMapping(
    start_offset=-(process_settings().training_window_days - 1),
    end_offset=0,
    allow_nonexistent_upstream_partitions=True,
)
