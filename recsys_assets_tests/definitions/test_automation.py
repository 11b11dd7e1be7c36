"""Automation's default status, the retry policy of service-facing steps, and the retrain job's run limits."""

from __future__ import annotations

import dagster as dg
import pytest

from recsys_assets.automation import SERVICE_RETRY_POLICY
from recsys_assets.definitions import ASSETS, defs
from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.jobs import POOL_TAG, TRAINING_POOL, pool_tags, retrain_job
from recsys_assets.schedules import build_schedules
from recsys_assets.sensors import build_sensors
from recsys_assets.settings import Settings

SERVICE_STEPS = {
    "interactions",
    "items",
    "trained_model",
    "model_bundle",
    "model_release",
    "recommendations",
    "recommendation_outcomes",
}


def statuses(env: dict[str, str]) -> set[str]:
    settings = Settings.from_env(env)
    automation = [*build_schedules(settings), *build_sensors(settings)]
    assert len(automation) == 10
    return {item.default_status.value for item in automation}


def test_automation_is_stopped_unless_the_deployment_says_running():
    assert statuses({}) == {"STOPPED"}
    assert statuses({"RECSYS_AUTOMATION": " Running "}) == {"RUNNING"}
    assert statuses({"RECSYS_AUTOMATION": "stopped"}) == {"STOPPED"}
    with pytest.raises(ConfigurationError, match="RECSYS_AUTOMATION='on'"):
        Settings.from_env({"RECSYS_AUTOMATION": "on"})


def test_every_schedule_and_sensor_follows_the_default():
    # The suite runs without RECSYS_AUTOMATION, like `dagster dev`: nothing starts by itself.
    loaded = defs()
    found = [s.default_status.value for s in (*loaded.schedules, *loaded.sensors)]  # type: ignore[union-attr]
    assert len(found) == 10 and set(found) == {"STOPPED"}


def test_only_the_steps_that_call_services_retry():
    policies = {asset.key.to_user_string(): asset.op.retry_policy for asset in ASSETS}
    assert len(policies) == 11
    assert {name for name, policy in policies.items() if policy is not None} == SERVICE_STEPS
    assert {policies[name] for name in SERVICE_STEPS} == {SERVICE_RETRY_POLICY}


@pytest.mark.slow  # a materialization: over a second on the shared machine
def test_a_failed_blocking_check_is_not_retried():
    @dg.asset(
        retry_policy=SERVICE_RETRY_POLICY,
        check_specs=[dg.AssetCheckSpec("gate", asset="gated", blocking=True)],
    )
    def gated():
        yield dg.MaterializeResult()
        yield dg.AssetCheckResult(check_name="gate", passed=False)

    with dg.instance_for_test() as instance:
        result = dg.materialize([gated], instance=instance, raise_on_error=False)
    assert not result.success
    assert [e.event_type_value for e in result.all_events if e.event_type_value.startswith("STEP_RE")] == []
    (failure,) = result.get_step_failure_events()
    assert "blocking asset check" in failure.step_failure_data.error.message  # type: ignore[union-attr]


def test_retrain_runs_in_the_training_pool_on_vertex_only_with_a_maximum_runtime():
    assert pool_tags(Settings.from_env({"RECSYS_TRAINING_LAUNCHER": "vertex"})) == {POOL_TAG: TRAINING_POOL}
    assert pool_tags(Settings.from_env({"RECSYS_TRAINING_LAUNCHER": "subprocess"})) == {}
    assert POOL_TAG not in retrain_job.tags  # this process trains locally: no Vertex pool tag on its runs
    assert int(retrain_job.tags["dagster/max_runtime"]) > 0
