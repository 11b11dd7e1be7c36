"""Cron schedules: the daily extract of yesterday's events, and the periodic retrain.

`RECSYS_RETRAIN_CRON` (default `0 4 * * 1`, Mondays 04:00) and `RECSYS_RETRAIN_TIMEZONE` (default UTC,
any IANA name) set when the retrain runs; it always trains on the latest complete day at that moment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dagster as dg

from recsys_assets.automation import DEFAULT_SCHEDULE_STATUS
from recsys_assets.jobs import TRIGGER_TAG, interactions_job, retrain_job
from recsys_assets.partitions import daily_partitions

# Two hours after midnight UTC: events of the day that arrive a little late are in before the extract;
# later ones are picked up by the `new_interaction_partitions` sensor.
EXTRACT_HOUR_UTC = 2
EXTRACT_MINUTE = 0

DEFAULT_RETRAIN_CRON = "0 4 * * 1"
DEFAULT_RETRAIN_TIMEZONE = "UTC"

daily_extract_schedule = dg.build_schedule_from_partitioned_job(
    interactions_job,
    name="daily_extract_schedule",
    description="Extracts each day's interactions once the day is complete (02:00 UTC).",
    hour_of_day=EXTRACT_HOUR_UTC,
    minute_of_hour=EXTRACT_MINUTE,
    tags={TRIGGER_TAG: "daily_extract_schedule"},
    default_status=DEFAULT_SCHEDULE_STATUS,
)


def build_retrain_schedule(cron: str, timezone: str) -> dg.ScheduleDefinition:
    """The retrain schedule on `retrain_job` for a cron expression evaluated in `timezone`.

    Each tick requests the latest complete day as of the tick's scheduled time, with that day as run key:
    a cron that fires several times a day still retrains each day at most once, and a re-evaluated tick
    cannot start a second run.

    Raises:
        ValueError: `timezone` is not an IANA time zone name.
        dagster.DagsterInvalidDefinitionError: `cron` is not a valid cron expression.
    """
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{timezone!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from exc

    @dg.schedule(
        name="retrain_schedule",
        job=retrain_job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=DEFAULT_SCHEDULE_STATUS,
        description=f"Retrains, evaluates and releases on the latest complete day ({cron}, {timezone}).",
    )
    def retrain_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        """Retrain on the last complete day at the scheduled time."""
        with dg.partition_loading_context(effective_dt=context.scheduled_execution_time):
            partition_key = daily_partitions.get_last_partition_key()
        if partition_key is None:
            return dg.SkipReason("no complete day in the daily partitions yet")
        return dg.RunRequest(run_key=partition_key, partition_key=partition_key, tags={TRIGGER_TAG: "retrain_schedule"})

    return retrain_schedule


def retrain_schedule_from_env(env: Mapping[str, str] | None = None) -> dg.ScheduleDefinition:
    """`build_retrain_schedule` with `RECSYS_RETRAIN_CRON` and `RECSYS_RETRAIN_TIMEZONE`.

    Raises:
        ValueError: Either variable holds an invalid value; the message names the variable.
    """
    env = os.environ if env is None else env
    cron = env.get("RECSYS_RETRAIN_CRON", "").strip() or DEFAULT_RETRAIN_CRON
    timezone = env.get("RECSYS_RETRAIN_TIMEZONE", "").strip() or DEFAULT_RETRAIN_TIMEZONE
    try:
        return build_retrain_schedule(cron, timezone)
    except dg.DagsterInvalidDefinitionError as exc:
        raise ValueError(f"RECSYS_RETRAIN_CRON={cron!r} is not a 5-field cron expression") from exc
    except ValueError as exc:
        raise ValueError(f"RECSYS_RETRAIN_TIMEZONE: {exc}") from exc


retrain_schedule = retrain_schedule_from_env()

schedules = [daily_extract_schedule, retrain_schedule]
