"""Freshness: Dagster's freshness checks on interactions, recommendations and model_release, and a stale one's alert
through the alert path (a JSON webhook answered by pytest-httpserver)."""

from __future__ import annotations

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from recsys_assets.freshness import FRESHNESS_CHECKS, build_freshness_sensors
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources import build_alerts
from recsys_assets.resources.secrets import LocalSecretStore
from recsys_assets.settings import Settings

WEBHOOK_PATH = "/hooks/freshness/secretpart"
WATCHED = ("interactions", "recommendations", "model_release")


def test_every_watched_asset_has_a_freshness_check():
    assert {key.asset_key.to_user_string() for checks in FRESHNESS_CHECKS for key in checks.check_keys} == set(WATCHED)


@pytest.mark.slow  # runs the freshness checks in a run
def test_a_stale_asset_alerts_once_through_the_webhook(httpserver: HTTPServer, monkeypatch):
    monkeypatch.setenv("RECSYS_SECRET_ALERT_WEBHOOK", httpserver.url_for(WEBHOOK_PATH))
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    alerts = build_alerts(
        Settings.from_env({"RECSYS_ALERT_WEBHOOK_SECRET": "alert-webhook", "RECSYS_UI_URL": "https://ui.example"}),
        LocalSecretStore(),
    )
    _, freshness_alerts = build_freshness_sensors(Settings.from_env({}))
    with dg.instance_for_test() as instance:
        # The last extract is of a day long ago; no list was served and nothing released: all three are overdue.
        instance.report_runless_asset_event(dg.AssetMaterialization("interactions", partition="2026-01-02"))
        # The watched assets as specs with their partitions: the checks need no asset's resources.
        specs = [dg.AssetSpec(name, partitions_def=daily_partitions) for name in WATCHED]
        checks_job = dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*FRESHNESS_CHECKS))
        defs = dg.Definitions(assets=specs, asset_checks=FRESHNESS_CHECKS, jobs=[checks_job])
        result = defs.resolve_job_def("freshness").execute_in_process(instance=instance)
        assert {evaluation.passed for evaluation in result.get_asset_check_evaluations()} == {False}
        with dg.build_sensor_context(instance=instance, resources={"alerts": alerts}) as context:
            assert freshness_alerts(context) is None
            cursor = context.cursor
        payloads = [request.get_json() for request, _ in httpserver.log]
        assert sorted(p["asset"] for p in payloads) == ["interactions", "model_release", "recommendations"]
        assert all(
            p["event"] == "dagster_asset_stale" and p["asset_url"].startswith("https://ui.example/assets/")
            for p in payloads
        )
        # Reported once: the next tick stays quiet until a check fails again.
        with dg.build_sensor_context(instance=instance, resources={"alerts": alerts}, cursor=cursor) as context:
            assert isinstance(freshness_alerts(context), dg.SkipReason)
        assert len(httpserver.log) == 3
