"""recsys_assets: a Dagster asset graph that keeps a recommendation model fresh."""

import os

# Dagster takes these two from the environment of the process that runs the steps (the CLI, a run
# worker, a test), and every such process imports this package first. Both cut the per-day event
# writes of a partition range run (benchmarks/README.md, issue 14); a value already set wins.
# - One "planned" event per asset for a range run instead of one per day. Dagster's trade-off: a
#   failed range run does not mark each of its days failed (the run itself still fails).
os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")
# - A range's per-day materializations reach the event log as batches (one write each in
#   dagster-postgres and in recsys_assets.instance.event_log's SQLite storage) instead of one write per day.
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")
