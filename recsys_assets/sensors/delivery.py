"""The served lists follow the data and the champion; a retrain follows their outcome.

`served_lists` (a sensor, not an AutomationCondition: the champion lives in the model store, which no
asset materializes when a release pull request is merged) requests `delivery_job` for the latest
extracted day when a new day is extracted or the released champion changes. `outcome_retrain_trigger`
requests `retrain_job` for the latest day served when the outcome decays or the traffic drifts
(`domain.retrain_trigger`); the reason is the run's `recsys/trigger` tag, which its alert shows.
"""

from __future__ import annotations

import json
from typing import Any

import dagster as dg

from recsys_assets.automation import sensor_status
from recsys_assets.domain.retrain_trigger import DayOutcome, TriggerThresholds, decay_reason, drift_reason
from recsys_assets.jobs import TRIGGER_TAG, delivery_job, retrain_job
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.resources.registry import ModelRegistry
from recsys_assets.settings import Settings

INTERACTIONS = dg.AssetKey("interactions")
RECOMMENDATIONS = dg.AssetKey("recommendations")
OUTCOMES = dg.AssetKey("recommendation_outcomes")
# Outcome days read per tick: the champion's first and latest weeks fit in them many times over.
OUTCOME_DAYS_READ = 120


def _cursor(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _champion(model_store: ModelStore, model_name: str) -> str:
    status = ModelRegistry(model_store, model_name).champion()
    return status.version if status else "none"


def build_served_lists(settings: Settings) -> dg.SensorDefinition:
    """The `served_lists` sensor, started as `RECSYS_AUTOMATION` says."""
    model_name = settings.model_name

    def served_lists(context: dg.SensorEvaluationContext, model_store: ModelStore) -> Any:
        """One delivery run for the latest extracted day, when it is new or the champion changed."""
        cursor = _cursor(context.cursor)
        days = sorted(context.instance.get_materialized_partitions(INTERACTIONS))
        if not days:
            return dg.SkipReason("no day of interactions extracted yet")
        day, champion = days[-1], _champion(model_store, model_name)
        reasons = []
        if day != cursor.get("day"):
            reasons.append(f"new day {day}")
        if champion != cursor.get("champion"):
            reasons.append(f"champion {champion}")
        if not reasons:
            return dg.SkipReason(f"lists of {day} already requested for champion {champion}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(
                    run_key=f"{day}:{champion}",
                    partition_key=day,
                    tags={TRIGGER_TAG: "served_lists: " + ", ".join(reasons)},
                )
            ],
            cursor=json.dumps({"day": day, "champion": champion}),
        )

    return dg.sensor(
        name="served_lists",
        job=delivery_job,
        minimum_interval_seconds=60,
        default_status=sensor_status(settings),
        description="Writes the released champion's lists for the latest extracted day, again when the champion changes.",
    )(served_lists)


def _metadata(record: dg.EventLogRecord) -> dict[str, Any]:
    materialization = record.asset_materialization
    metadata = materialization.metadata if materialization else {}
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def outcome_series(instance: dg.DagsterInstance) -> list[DayOutcome]:
    """The latest outcome of each measured day (those with a hit rate), oldest first."""
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=OUTCOMES), limit=OUTCOME_DAYS_READ)
    latest: dict[str, DayOutcome] = {}
    for record in records.records:  # newest first
        meta = _metadata(record)
        if record.partition_key and record.partition_key not in latest and "model_hit_rate" in meta:
            latest[record.partition_key] = DayOutcome(
                record.partition_key, str(meta["model_version"]), float(meta["model_hit_rate"])
            )
    return sorted(latest.values(), key=lambda outcome: outcome.day)


def retrain_reason(
    instance: dg.DagsterInstance, champion: str, thresholds: TriggerThresholds
) -> tuple[str, str | None]:
    """The latest day served and why to retrain on it (None: no reason)."""
    [latest] = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=RECOMMENDATIONS), limit=1).records or [
        None
    ]
    if latest is None or latest.partition_key is None:
        return "", None
    day, meta = latest.partition_key, _metadata(latest)
    reason = None
    if meta.get("champion") == champion:
        reason = drift_reason(
            day,
            float(meta.get("unseen_item_share", 0.0)),
            float(meta.get("unknown_user_share", 0.0)),
            champion,
            thresholds,
        )
    return day, reason or decay_reason(outcome_series(instance), champion, thresholds)


def build_outcome_retrain_trigger(settings: Settings) -> dg.SensorDefinition:
    """The `outcome_retrain_trigger` sensor, started as `RECSYS_AUTOMATION` says."""
    model_name = settings.model_name
    thresholds = TriggerThresholds(
        max_decay=settings.retrain_max_decay,
        max_unseen_item_share=settings.drift_max_unseen_items,
        max_unknown_user_share=settings.drift_max_unknown_users,
    )

    def outcome_retrain_trigger(context: dg.SensorEvaluationContext, model_store: ModelStore) -> Any:
        """A retrain of the latest day served when the champion's outcome decays or the traffic drifts away from it."""
        champion = _champion(model_store, model_name)
        if champion == "none":
            return dg.SkipReason("no champion released: the schedule trains the first one")
        day, reason = retrain_reason(context.instance, champion, thresholds)
        if not day:
            return dg.SkipReason("no lists served yet")
        if reason is None:
            return dg.SkipReason(f"{champion} on {day}: no outcome decay or drift beyond the thresholds")
        if context.cursor == f"{day}:{champion}":
            return dg.SkipReason(f"a retrain of {day} was already requested: {reason}")
        context.log.info(f"requesting a retrain of {day}: {reason}")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"outcome:{day}:{champion}", partition_key=day, tags={TRIGGER_TAG: reason})
            ],
            cursor=f"{day}:{champion}",
        )

    return dg.sensor(
        name="outcome_retrain_trigger",
        job=retrain_job,
        minimum_interval_seconds=300,
        default_status=sensor_status(settings),
        description="Requests a retrain when the served lists' hit rate decays below its post-release level or the "
        "traffic drifts away from the champion (thresholds: RECSYS_RETRAIN_MAX_DECAY, RECSYS_DRIFT_MAX_*).",
    )(outcome_retrain_trigger)
