"""Tell a person when a run fails: job, partition, failed step, the cause's last line and a link to the run."""

from __future__ import annotations

import dagster as dg

from recsys_assets.automation import sensor_status
from recsys_assets.domain.alerts import RunFailureAlert, last_line
from recsys_assets.domain.redaction import scrub
from recsys_assets.jobs import TRIGGER_TAG
from recsys_assets.resources.alerts import AlertNotifier
from recsys_assets.settings import Settings


def _root_cause(error: dg.SerializableErrorInfo) -> dg.SerializableErrorInfo:
    # Dagster wraps the step's exception ("Error occurred while executing op ..."); the person on call
    # needs the innermost one.
    while error.cause is not None:
        error = error.cause
    return error


def failure_alert(context: dg.RunFailureSensorContext, notifier: AlertNotifier) -> RunFailureAlert:
    """The alert for the failed run in `context`: the first failed step and its root cause, else the run's failure."""
    run = context.dagster_run
    step_failures = context.get_step_failure_events()
    failed_step, cause = None, last_line(context.failure_event.message or "") or "run failed"
    if step_failures:
        failed_step = step_failures[0].step_key
        error = step_failures[0].step_failure_data.error
        if error is not None:
            cause = last_line(_root_cause(error).message) or cause
    return RunFailureAlert(
        run_id=run.run_id,
        job_name=run.job_name,
        partition=run.tags.get("dagster/partition"),
        failed_step=failed_step,
        # Stored errors are scrubbed when a step fails; scrubbed again here for errors recorded
        # by anything else (a run worker that crashed, an older version of this code).
        cause=scrub(cause),
        run_url=notifier.run_url(run.run_id),
        trigger=scrub(run.tags[TRIGGER_TAG]) if TRIGGER_TAG in run.tags else None,
    )


def build_run_failure_alerts(settings: Settings) -> dg.SensorDefinition:
    """The `run_failure_alerts` sensor, started as `RECSYS_AUTOMATION` says."""
    return dg.run_failure_sensor(
        name="run_failure_alerts",
        default_status=sensor_status(settings),
        minimum_interval_seconds=30,
        description="Sends each failed run of this code location to Slack and/or a JSON webhook.",
    )(run_failure_alerts)


def run_failure_alerts(context: dg.RunFailureSensorContext, alerts: AlertNotifier) -> None:
    """One alert per failed run; a failed delivery fails the tick (red under Automation in the UI)."""
    if not alerts.targets():
        context.log.info("no alert target configured (RECSYS_ALERT_SLACK_CHANNEL, RECSYS_ALERT_WEBHOOK_SECRET)")
        return
    alerts.send(failure_alert(context, alerts))
    context.log.info(f"alert for run {context.dagster_run.run_id} sent to {', '.join(alerts.targets())}")
