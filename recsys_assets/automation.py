"""How automation starts and how service-facing steps retry: shared by assets, jobs, schedules and sensors.

`RECSYS_AUTOMATION=running` (set by the production deployment) makes every schedule and sensor RUNNING
as soon as the code location loads; the default `stopped` keeps `dagster dev` from starting runs by
itself. A toggle in the UI still overrides the default either way.
"""

from __future__ import annotations

import dagster as dg

from recsys_assets.settings import Settings


def schedule_status(settings: Settings) -> dg.DefaultScheduleStatus:
    """Whether schedules start RUNNING (`RECSYS_AUTOMATION=running`) or STOPPED (the default)."""
    return dg.DefaultScheduleStatus.RUNNING if settings.automation == "running" else dg.DefaultScheduleStatus.STOPPED


def sensor_status(settings: Settings) -> dg.DefaultSensorStatus:
    """Whether sensors start RUNNING (`RECSYS_AUTOMATION=running`) or STOPPED (the default)."""
    return dg.DefaultSensorStatus.RUNNING if settings.automation == "running" else dg.DefaultSensorStatus.STOPPED


# For steps that call a service (warehouse query, training launch, bundle upload, release): a transient
# outage is retried three times, after about 15 s, 30 s and 60 s. Blocking checks are never retried:
# Dagster raises their failure outside the step's code, where no RetryPolicy applies, and a verdict
# raised as `dg.Failure(allow_retries=False)` is not retried either.
SERVICE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
