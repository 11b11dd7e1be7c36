"""The cron schedules: which job and partition each tick requests, and the retrain's env configuration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from recsys_assets.definitions import ASSETS
from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.jobs import interactions_job, retrain_job
from recsys_assets.schedules import DEFAULT_RETRAIN_CRON, TRIGGER_TAG, build_schedules
from recsys_assets.sensors.partitions import build_new_interaction_partitions
from recsys_assets.settings import SETTINGS, Settings
from recsys_assets_tests.support.environment import local_resources

# Dagster's partitioned-schedule builder calls its own deprecated `run_request_for_partition`.
pytestmark = pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition`:DeprecationWarning")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


def repository(root: Path, *extra: dg.ScheduleDefinition) -> dg.RepositoryDefinition:
    defs = dg.Definitions(
        assets=ASSETS,
        jobs=[interactions_job, retrain_job],
        schedules=[*build_schedules(SETTINGS), *extra],
        sensors=[build_new_interaction_partitions(SETTINGS)],
        resources=local_resources(root),
    )
    dg.Definitions.validate_loadable(defs)
    return defs.get_repository_def()


def evaluate(
    repo: dg.RepositoryDefinition, name: str, at: datetime, instance: dg.DagsterInstance
) -> list[dg.RunRequest]:
    schedule = repo.get_schedule_def(name)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=at, repository_def=repo)
    data = schedule.evaluate_tick(context)
    assert data.skip_message is None, data.skip_message
    return list(data.run_requests)


@pytest.mark.slow
def test_daily_extract_requests_the_day_that_just_ended(tmp_path, instance):
    repo = repository(tmp_path)
    schedule = repo.get_schedule_def("daily_extract_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "0 2 * * *",
        "UTC",
        "interactions_job",
    )
    [request] = evaluate(repo, "daily_extract_schedule", datetime(2026, 5, 5, 2, 0, tzinfo=UTC), instance)
    assert request.partition_key == "2026-05-04" and request.tags[TRIGGER_TAG] == "daily_extract_schedule"


@pytest.mark.slow
def test_retrain_defaults_to_weekly_on_the_latest_complete_day(tmp_path, instance):
    repo = repository(tmp_path)
    schedule = repo.get_schedule_def("retrain_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        DEFAULT_RETRAIN_CRON,
        "UTC",
        "retrain_job",
    )
    monday = datetime(2026, 5, 4, 4, 0, tzinfo=UTC)
    [request] = evaluate(repo, "retrain_schedule", monday, instance)
    assert (request.partition_key, request.run_key, request.tags[TRIGGER_TAG]) == (
        "2026-05-03",
        "2026-05-03",
        "retrain_schedule",
    )
    assert request.tags["dagster/partition"] == "2026-05-03"


def retrain_schedule(env: dict[str, str]) -> dg.ScheduleDefinition:
    [schedule] = [s for s in build_schedules(Settings.from_env(env)) if s.name == "retrain_schedule"]
    return schedule


@pytest.mark.slow
def test_retrain_cron_and_timezone_come_from_the_environment(tmp_path, instance):
    auckland = retrain_schedule({"RECSYS_RETRAIN_CRON": "30 1 * * *", "RECSYS_RETRAIN_TIMEZONE": "Pacific/Auckland"})
    assert (auckland.cron_schedule, auckland.execution_timezone) == ("30 1 * * *", "Pacific/Auckland")
    # 01:30 on 4 May in Auckland is 13:30 UTC on 3 May: the latest complete (UTC) day is 2 May.
    tick = datetime(2026, 5, 4, 1, 30, tzinfo=ZoneInfo("Pacific/Auckland"))
    repo = dg.Definitions(
        assets=ASSETS, jobs=[interactions_job, retrain_job], schedules=[auckland], resources=local_resources(tmp_path)
    ).get_repository_def()
    [request] = evaluate(repo, "retrain_schedule", tick, instance)
    assert request.partition_key == "2026-05-02"


def test_invalid_retrain_settings_name_the_variable():
    with pytest.raises(ConfigurationError, match="RECSYS_RETRAIN_CRON='every monday'"):
        retrain_schedule({"RECSYS_RETRAIN_CRON": "every monday"})
    with pytest.raises(ConfigurationError, match="RECSYS_RETRAIN_TIMEZONE='Mars/Olympus' is not an IANA time zone"):
        retrain_schedule({"RECSYS_RETRAIN_TIMEZONE": "Mars/Olympus"})
    assert retrain_schedule({"RECSYS_RETRAIN_CRON": ""}).cron_schedule == DEFAULT_RETRAIN_CRON
