"""Cron schedules: the daily extract of yesterday's events, the periodic retrain, and the weekly gc.

`RECSYS_RETRAIN_CRON` (default `0 4 * * 1`, Mondays 04:00) and `RECSYS_RETRAIN_TIMEZONE` (default UTC,
any IANA name) set when the retrain runs; it always trains on the latest complete day at that moment.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from recsys_assets.automation import schedule_status
from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.jobs import TRIGGER_TAG, interactions_job, retrain_job
from recsys_assets.partitions import daily_partitions
from recsys_assets.retention import gc_job
from recsys_assets.settings import Settings

# Two hours after midnight UTC: events of the day that arrive a little late are in before the extract;
# later ones are picked up by the `new_interaction_partitions` sensor.
EXTRACT_HOUR_UTC = 2
EXTRACT_MINUTE = 0

# Sundays 05:00 UTC: after the week's retrains (Mondays 04:00 by default) have long finished.
GC_CRON = "0 5 * * 0"

DEFAULT_RETRAIN_CRON = Settings.model_fields["retrain_cron"].default


def build_daily_extract_schedule(status: dg.DefaultScheduleStatus) -> Any:
    """The extract of each complete day, at 02:00 UTC (a schedule Dagster resolves against the asset job)."""
    return dg.build_schedule_from_partitioned_job(
        interactions_job,
        name="daily_extract_schedule",
        description="Extracts each day's interactions once the day is complete (02:00 UTC).",
        hour_of_day=EXTRACT_HOUR_UTC,
        minute_of_hour=EXTRACT_MINUTE,
        tags={TRIGGER_TAG: "daily_extract_schedule"},
        default_status=status,
    )


def build_retrain_schedule(
    cron: str, timezone: str, status: dg.DefaultScheduleStatus = dg.DefaultScheduleStatus.STOPPED
) -> dg.ScheduleDefinition:
    """The retrain schedule on `retrain_job` for a cron expression evaluated in `timezone` (an IANA name).

    Each tick requests the latest complete day as of the tick's scheduled time, with that day as run key:
    a cron that fires several times a day still retrains each day at most once, and a re-evaluated tick
    cannot start a second run.

    Raises:
        ConfigurationError: `cron` is not a valid cron expression (the message names RECSYS_RETRAIN_CRON).
    """

    def retrain_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Retrain on the last complete day at the scheduled time."""
        with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
            partition_key = daily_partitions.get_last_partition_key()
        if partition_key is None:
            return dg.SkipReason("no complete day in the daily partitions yet")
        return dg.RunRequest(run_key=partition_key, partition_key=partition_key, tags={TRIGGER_TAG: "retrain_schedule"})

    try:
        return dg.schedule(
            name="retrain_schedule",
            job=retrain_job,
            cron_schedule=cron,
            execution_timezone=timezone,
            default_status=status,
            description=f"Retrains, evaluates and releases on the latest complete day ({cron}, {timezone}).",
        )(retrain_schedule)
    except dg.DagsterInvalidDefinitionError:
        raise ConfigurationError(f"RECSYS_RETRAIN_CRON={cron!r} is not a 5-field cron expression") from None


def build_gc_schedule(status: dg.DefaultScheduleStatus) -> dg.ScheduleDefinition:
    """The retention policy applied weekly (`gc_job`, what `python -m recsys_assets gc` does)."""
    return dg.ScheduleDefinition(
        name="gc_schedule",
        job=gc_job,
        cron_schedule=GC_CRON,
        execution_timezone="UTC",
        default_status=status,
        tags={TRIGGER_TAG: "gc_schedule"},
        description="Removes old run folders and unneeded bundle files (RECSYS_RETENTION_RUNS, _DAYS), weekly.",
    )


def build_schedules(settings: Settings) -> list[Any]:
    """Every schedule, started as `RECSYS_AUTOMATION` says, the retrain at `RECSYS_RETRAIN_CRON`."""
    status = schedule_status(settings)
    return [
        build_daily_extract_schedule(status),
        build_retrain_schedule(settings.retrain_cron, settings.retrain_timezone, status),
        build_gc_schedule(status),
    ]
