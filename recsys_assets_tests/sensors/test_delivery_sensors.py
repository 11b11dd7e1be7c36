"""The delivery sensors through `build_sensor_context`: lists follow the data and the champion; drift and a
decaying outcome request a retrain, with the reason as the run's trigger tag."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pytest

from recsys_assets.assets import ASSETS
from recsys_assets.delivery.recommendation_outcomes import recommendation_outcomes
from recsys_assets.delivery.recommendations import recommendations
from recsys_assets.domain.alerts import RunFailureAlert
from recsys_assets.domain.retrain_trigger import DayOutcome, TriggerThresholds, decay_reason
from recsys_assets.jobs import TRIGGER_TAG, delivery_job, retrain_job
from recsys_assets.sensors.delivery import build_outcome_retrain_trigger, build_served_lists
from recsys_assets.settings import Settings
from recsys_assets_tests.support.board import STEADY_SPEC, publish, seeded_board

SETTINGS = Settings.from_env({})
END = STEADY_SPEC.end_date
RELEASED_THROUGH = END - timedelta(days=8)


def tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, resources: dict[str, Any], cursor=None):
    defs = dg.Definitions(assets=ASSETS, jobs=[retrain_job, delivery_job], sensors=[sensor], resources=resources)
    with dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor, definitions=defs) as context:
        return sensor.evaluate_tick(context)


def serve_days(resources: dict[str, Any], instance: dg.DagsterInstance, days: list[date]) -> list[dict[str, Any]]:
    """Lists and outcomes of `days`, materialized in order; each day's outcome metadata."""
    measured = []
    for day in days:
        result = dg.materialize(
            [recommendations, recommendation_outcomes],
            partition_key=day.isoformat(),
            resources=resources,
            instance=instance,
        )
        [event] = result.asset_materializations_for_node("recommendation_outcomes")
        measured.append({key: getattr(value, "value", value) for key, value in event.metadata.items()})
    return measured


@pytest.mark.slow  # two boards, four days of lists and outcomes each
@pytest.mark.parametrize("drifted", [False, True])
def test_drift_drops_the_outcome_and_fires_the_trigger_and_steady_traffic_does_not(tmp_path, drifted):
    spec = replace(STEADY_SPEC, drift_from=END - timedelta(days=1) if drifted else None)
    resources = seeded_board(tmp_path, spec)
    publish(resources, "v1", release=True, through=RELEASED_THROUGH, spec=spec)
    sensor = build_outcome_retrain_trigger(SETTINGS)
    with dg.instance_for_test() as instance:
        measured = serve_days(resources, instance, [END - timedelta(days=back) for back in (3, 2, 1, 0)])
        before, after = measured[1]["model_hit_rate"], measured[3]["model_hit_rate"]
        result = tick(sensor, instance, resources)
        if not drifted:
            assert result.run_requests == [] and "no outcome decay or drift" in result.skip_message
            return
        # The day after the drift, the lists (trained before it) find far fewer takers than before.
        assert after < 0.75 * before
        [request] = result.run_requests
        assert request.partition_key == END.isoformat()
        reason = request.tags[TRIGGER_TAG]
        assert reason.startswith("drift: ") and "items v1 never saw" in reason
        # The next tick does not ask again for the same day and champion.
        again = tick(sensor, instance, resources, cursor=result.cursor)
        assert again.run_requests == [] and "already requested" in again.skip_message


def test_the_decay_reason_compares_the_latest_week_with_the_first_week_after_release():
    thresholds = TriggerThresholds(max_decay=0.10)
    steady = [DayOutcome(f"2026-03-{day:02d}", "v1", 0.30) for day in range(1, 15)]
    assert decay_reason(steady, "v1", thresholds) is None
    decayed = steady[:7] + [DayOutcome(f"2026-03-{day:02d}", "v1", 0.26) for day in range(8, 15)]
    reason = decay_reason(decayed, "v1", thresholds)
    assert reason is not None and "13.3% below 0.3000 in its first 7 days" in reason
    # Thirteen days are not two separate weeks; another version's days do not count.
    assert decay_reason(decayed[:-1], "v1", thresholds) is None
    assert decay_reason(decayed, "v2", thresholds) is None


@pytest.mark.slow
def test_the_served_lists_follow_new_days_and_a_new_champion(tmp_path):
    resources = seeded_board(tmp_path)
    sensor = build_served_lists(SETTINGS)
    with dg.instance_for_test() as instance:
        assert tick(sensor, instance, resources).skip_message == "no day of interactions extracted yet"
        instance.report_runless_asset_event(dg.AssetMaterialization("interactions", partition="2026-03-09"))
        first = tick(sensor, instance, resources)
        [request] = first.run_requests
        assert request.partition_key == "2026-03-09" and request.tags[TRIGGER_TAG] == (
            "served_lists: new day 2026-03-09, champion none"
        )
        assert tick(sensor, instance, resources, cursor=first.cursor).run_requests == []
        publish(resources, "v1", release=True)
        [request] = tick(sensor, instance, resources, cursor=first.cursor).run_requests
        assert request.tags[TRIGGER_TAG] == "served_lists: champion v1" and request.run_key == "2026-03-09:v1"


def test_a_failed_runs_alert_says_what_started_it():
    alert = RunFailureAlert("r1", "retrain_job", "2026-03-10", "trained_model", "boom", "http://ui/runs/r1", "drift: x")
    assert "started by: drift: x" in alert.text() and alert.payload()["trigger"] == "drift: x"


@pytest.mark.slow
def test_a_decaying_outcome_requests_a_retrain_naming_the_decay(tmp_path):
    resources = seeded_board(tmp_path)
    publish(resources, "v1", release=True)
    sensor = build_outcome_retrain_trigger(SETTINGS)
    first = date(2026, 3, 1)
    with dg.instance_for_test() as instance:

        def measured(days: int, hit_rate: float, start: int = 0) -> None:
            for offset in range(start, start + days):
                day = (first + timedelta(days=offset)).isoformat()
                metadata = {"model_version": "v1", "model_hit_rate": hit_rate}
                instance.report_runless_asset_event(
                    dg.AssetMaterialization("recommendation_outcomes", partition=day, metadata=metadata)
                )
                drift = {"champion": "v1", "unseen_item_share": 0.05, "unknown_user_share": 0.0}
                instance.report_runless_asset_event(
                    dg.AssetMaterialization("recommendations", partition=day, metadata=drift)
                )

        measured(7, 0.30)
        measured(6, 0.29, start=7)
        assert "no outcome decay or drift" in tick(sensor, instance, resources).skip_message  # 13 days: one week only
        measured(1, 0.10, start=13)  # the second week's mean: (6 x 0.29 + 0.10) / 7 = 0.263, 12.4% below 0.30
        [request] = tick(sensor, instance, resources).run_requests
        assert request.partition_key == "2026-03-14"
        assert request.tags[TRIGGER_TAG].startswith("outcome decay: the 7-day mean hit rate of v1 up to 2026-03-14")
