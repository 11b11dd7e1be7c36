"""A failed run reaches Slack (through the real Slack SDK, token from the secrets resource) and a JSON webhook."""

from __future__ import annotations

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from recsys_assets.domain.alerts import last_line
from recsys_assets.partitions import daily_partitions
from recsys_assets.resources import build_alerts
from recsys_assets.resources.alerts import AlertDeliveryError
from recsys_assets.resources.secrets import LocalSecretStore
from recsys_assets.sensors.alerts import build_run_failure_alerts
from recsys_assets.settings import SETTINGS, Settings

# Each test materializes a failing run: over a second on the shared machine.
pytestmark = pytest.mark.slow

TOKEN = "xoxb-test-token-value"
WEBHOOK_PATH = "/hooks/T000/B000/secretpart"
PARTITION = "2026-03-10"


@dg.asset(partitions_def=daily_partitions)
def warehouse_extract() -> None:
    """Fails the way a service call does: a wrapped exception whose last line says what happened."""
    raise ConnectionError("warehouse unreachable\nquery timed out after 30 s")


@dg.asset(partitions_def=daily_partitions)
def tracking_call() -> None:
    """Fails quoting a URI with a password, as an unguarded client error (or an old run's record) would."""
    raise ConnectionError("tracking server http://ops:hunter2-alert-pw@mlflow.internal:5000 unreachable")


def failed_run_context(
    instance: dg.DagsterInstance, alerts, asset: dg.AssetsDefinition = warehouse_extract
) -> dg.RunStatusSensorContext:
    """The sensor's context for a freshly failed run (a context manager: it opens the resources)."""
    result = dg.materialize([asset], instance=instance, partition_key=PARTITION, raise_on_error=False)
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alerts",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=run,
        resources={"alerts": alerts},
    )


run_failure_alerts = build_run_failure_alerts(SETTINGS)


@pytest.fixture
def stand_in(httpserver: HTTPServer, monkeypatch) -> HTTPServer:
    monkeypatch.setenv("RECSYS_SECRET_SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("RECSYS_SECRET_ALERT_WEBHOOK", httpserver.url_for(WEBHOOK_PATH))
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json({"ok": True, "ts": "1.0"})
    httpserver.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("ok")
    return httpserver


def alerts_for(server: HTTPServer, **overrides: str):
    env = {
        "RECSYS_ALERT_SLACK_CHANNEL": "#recsys-alerts",
        "RECSYS_SLACK_API_URL": server.url_for("/api/"),
        "RECSYS_ALERT_WEBHOOK_SECRET": "alert-webhook",
        "RECSYS_UI_URL": "https://dagster.example.com/",
        **overrides,
    }
    return build_alerts(Settings.from_env(env), LocalSecretStore())


def test_failed_run_is_reported_to_slack_and_the_webhook(stand_in: HTTPServer):
    alerts = alerts_for(stand_in)
    with dg.instance_for_test() as instance, failed_run_context(instance, alerts) as context:
        run_failure_alerts(context.for_run_failure())
        run_id = context.dagster_run.run_id

    (slack_request, _), (webhook_request, _) = stand_in.log
    assert slack_request.headers["Authorization"] == f"Bearer {TOKEN}"
    slack = slack_request.get_json()
    assert slack["channel"] == "#recsys-alerts"
    for expected in (run_id, PARTITION, "`warehouse_extract`", "query timed out after 30 s"):
        assert expected in slack["text"]
    assert f"https://dagster.example.com/runs/{run_id}" in slack["text"]
    assert TOKEN not in slack["text"]

    payload = webhook_request.get_json()
    assert payload["event"] == "dagster_run_failure"
    assert payload["run_id"] == run_id
    assert payload["job_name"] == "__ephemeral_asset_job__"
    assert payload["partition"] == PARTITION
    assert payload["failed_step"] == "warehouse_extract"
    assert payload["cause"].endswith("query timed out after 30 s")
    assert payload["run_url"] == f"https://dagster.example.com/runs/{run_id}"


def test_a_failed_delivery_fails_the_tick_without_leaking_the_webhook_url(stand_in: HTTPServer):
    stand_in.clear()
    stand_in.expect_request("/api/chat.postMessage", method="POST").respond_with_json({"ok": True, "ts": "1.0"})
    stand_in.expect_request(WEBHOOK_PATH, method="POST").respond_with_data("down", status=503)
    alerts = alerts_for(stand_in)
    with (
        dg.instance_for_test() as instance,
        failed_run_context(instance, alerts) as context,
        pytest.raises(AlertDeliveryError) as raised,
    ):
        run_failure_alerts(context.for_run_failure())
    assert "webhook alert-webhook: HTTPError" in str(raised.value)
    assert "secretpart" not in str(raised.value)
    assert len(stand_in.log) == 2  # Slack was still tried


def test_no_target_configured_sends_nothing(stand_in: HTTPServer):
    alerts = alerts_for(stand_in, RECSYS_ALERT_SLACK_CHANNEL="", RECSYS_ALERT_WEBHOOK_SECRET="")
    with dg.instance_for_test() as instance, failed_run_context(instance, alerts) as context:
        run_failure_alerts(context.for_run_failure())
    assert stand_in.log == []


def test_last_line_is_the_last_non_blank_line():
    assert last_line("Traceback...\n  File x\nValueError: bad\n\n") == "ValueError: bad"
    assert last_line("") == ""


def test_alert_text_carries_no_password_of_a_url(stand_in: HTTPServer):
    """Slack and the webhook are pytest-httpserver stand-ins answering as the real services do."""
    alerts = alerts_for(stand_in)
    with dg.instance_for_test() as instance, failed_run_context(instance, alerts, tracking_call) as context:
        run_failure_alerts(context.for_run_failure())
    (slack_request, _), (webhook_request, _) = stand_in.log
    for text in (slack_request.get_data(as_text=True), webhook_request.get_data(as_text=True)):
        assert "hunter2-alert-pw" not in text and "http://ops:[redacted]@mlflow.internal:5000" in text
