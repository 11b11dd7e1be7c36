"""The Dagster instance's own pieces that `dagster.yaml` names.

Both subclass Dagster internals, not its public API: `event_log.py` extends `SqliteEventLogStorage`
(and its private insert and index helpers), `run_launcher.py` extends `DefaultRunLauncher` (and the
run-monitoring health check, `CheckRunHealthResult`, `WorkerStatus`). They are tested against the
Dagster version below, which setup.py pins as well; recsys_assets_tests/instance/ checks both, so a
Dagster upgrade re-runs their tests before anything else.
"""

TESTED_DAGSTER_VERSION = "1.13.27"
