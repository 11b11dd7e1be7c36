"""How automation starts and how service-facing steps retry: shared by assets, jobs, schedules and sensors.

`RECSYS_AUTOMATION=running` (set by the production deployment) makes every schedule and sensor RUNNING
as soon as the code location loads; the default `stopped` keeps `dagster dev` from starting runs by
itself. A toggle in the UI still overrides the default either way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import dagster as dg

AUTOMATION_ENV = "RECSYS_AUTOMATION"


def automation_running(env: Mapping[str, str] | None = None) -> bool:
    """Whether schedules and sensors start RUNNING (`RECSYS_AUTOMATION=running|stopped`, default stopped).

    Raises:
        ValueError: Any other value; the message names the variable.
    """
    env = os.environ if env is None else env
    value = env.get(AUTOMATION_ENV, "").strip().lower() or "stopped"
    if value not in ("running", "stopped"):
        raise ValueError(f"{AUTOMATION_ENV}={value!r} is not running or stopped")
    return value == "running"


AUTOMATION_RUNNING = automation_running()
DEFAULT_SCHEDULE_STATUS = dg.DefaultScheduleStatus.RUNNING if AUTOMATION_RUNNING else dg.DefaultScheduleStatus.STOPPED
DEFAULT_SENSOR_STATUS = dg.DefaultSensorStatus.RUNNING if AUTOMATION_RUNNING else dg.DefaultSensorStatus.STOPPED

# For steps that call a service (warehouse query, training launch, bundle upload, release): a transient
# outage is retried three times, after about 15 s, 30 s and 60 s. Blocking checks are never retried:
# Dagster raises their failure outside the step's code, where no RetryPolicy applies, and a verdict
# raised as `dg.Failure(allow_retries=False)` is not retried either.
SERVICE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
