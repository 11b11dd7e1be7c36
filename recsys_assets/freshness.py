"""Staleness: Dagster freshness checks on the extract, the served lists and the release, and their alerts.

`build_time_partition_freshness_checks` gives `interactions` and `recommendations` a deadline per
daily partition: the day that ended must be materialized by 06:00 UTC (the extract runs at 02:00, the
lists follow it). `build_last_update_freshness_checks` fails `model_release` when nothing was released
for 14 days. Dagster's `freshness_checks_sensor` evaluates them; `freshness_alerts` sends each failed
evaluation once through the run-failure alert path (Slack and/or the webhook).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from recsys_assets.automation import sensor_status
from recsys_assets.domain.alerts import StaleAssetAlert
from recsys_assets.domain.redaction import scrub
from recsys_assets.resources.alerts import AlertNotifier
from recsys_assets.settings import Settings

DAILY_DEADLINE_CRON = "0 6 * * *"
RELEASE_MAX_AGE = timedelta(days=14)

FRESHNESS_CHECKS = [
    *dg.build_time_partition_freshness_checks(
        assets=["interactions", "recommendations"],
        deadline_cron=DAILY_DEADLINE_CRON,
        severity=dg.AssetCheckSeverity.ERROR,
    ),
    *dg.build_last_update_freshness_checks(
        assets=["model_release"], lower_bound_delta=RELEASE_MAX_AGE, severity=dg.AssetCheckSeverity.ERROR
    ),
]
CHECK_KEYS = [key for checks in FRESHNESS_CHECKS for key in checks.check_keys]


def stale_alerts(
    instance: dg.DagsterInstance, notifier: AlertNotifier, cursor: dict[str, Any]
) -> list[tuple[str, StaleAssetAlert]]:
    """(cursor entry, alert) for every freshness check whose latest evaluation failed and was not alerted yet."""
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(CHECK_KEYS)
    found = []
    for key, record in latest.items():
        if record.status != AssetCheckExecutionRecordStatus.FAILED or cursor.get(key.to_user_string()) == record.id:
            continue
        evaluation = record.event.asset_check_evaluation if record.event else None
        description = (evaluation.description if evaluation else None) or "missed its freshness deadline"
        asset = key.asset_key.to_user_string()
        found.append(
            (key.to_user_string(), StaleAssetAlert(asset, key.name, scrub(description), notifier.asset_url(asset)))
        )
        cursor[key.to_user_string()] = record.id
    return found


def build_freshness_sensors(settings: Settings) -> list[dg.SensorDefinition]:
    """Dagster's freshness checks sensor and `freshness_alerts`, started as `RECSYS_AUTOMATION` says."""

    def freshness_alerts(context: dg.SensorEvaluationContext, alerts: AlertNotifier) -> Any:
        """One alert per failed freshness evaluation; a failed delivery fails the tick and is retried next tick."""
        cursor = json.loads(context.cursor) if context.cursor else {}
        found = stale_alerts(context.instance, alerts, cursor)
        if not found:
            return dg.SkipReason("every watched asset is fresh (or was already reported)")
        if alerts.targets():
            for _, alert in found:
                alerts.send(alert)
        context.log.warning("; ".join(f"{alert.asset} is stale: {alert.description}" for _, alert in found))
        context.update_cursor(json.dumps(cursor))
        return None

    return [
        dg.build_sensor_for_freshness_checks(
            freshness_checks=FRESHNESS_CHECKS, default_status=sensor_status(settings), minimum_interval_seconds=300
        ),
        dg.sensor(
            name="freshness_alerts",
            minimum_interval_seconds=300,
            default_status=sensor_status(settings),
            description="Sends an alert (Slack and/or webhook) for each failed freshness check of interactions, "
            "recommendations and model_release.",
        )(freshness_alerts),
    ]
