"""Shared fixtures. Stand-ins for cloud services live in `support/standins/`, one module per service."""

import os
from pathlib import Path

import pytest

from recsys_assets.settings import DAGSTER_RANGE_RUN_ENVIRONMENT

# The test data (synthetic days in 2026, not the last 90 days) starts after this; set before the
# package reads its settings, and inherited by every process a test starts.
os.environ.setdefault("RECSYS_PARTITIONS_START", "2026-01-01")
# As in both deployments: the suite's processes batch a range run's events whichever instance they open.
for _name, _value in DAGSTER_RANGE_RUN_ENVIRONMENT.items():
    os.environ.setdefault(_name, _value)

pytest_plugins: list[str] = [
    "recsys_assets_tests.support.standins.s3",  # before vertex, which builds on its moto server
    "recsys_assets_tests.support.standins.vertex",
    "recsys_assets_tests.support.standins.secret_manager",
    "recsys_assets_tests.support.standins.github",
    "recsys_assets_tests.support.standins.bigquery",
]


# How a module says all its tests are the slow tier; the fast tier then does not even import it.
SLOW_MODULE = "pytestmark = pytest.mark.slow\n"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Under `-m "not slow"`, leave out the modules marked slow as a whole without importing them.

    Deselection needs the module imported first, and each xdist worker imports every module: the
    cloud clients some of them load (aiplatform_v1, BigQuery's) cost each worker a second or more for no
    test it runs.
    """
    if config.getoption("markexpr") != "not slow" or not collection_path.name.startswith("test_"):
        return None
    if collection_path.suffix == ".py" and SLOW_MODULE in collection_path.read_text():
        return True
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def embedded_env(tmp_path, monkeypatch):
    """The embedded default under `tmp_path`, in this process's environment, with an ephemeral Dagster instance."""
    # Imported here: the package reads its settings on import, after the partitions start above is set.
    from recsys_assets_tests.support.environment import local_env

    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # ephemeral instance: nothing outside tmp_path
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path


@pytest.fixture
def instance():
    """A test Dagster instance with the project's event log (dagster.yaml's), the one the CLI and run workers write.

    A module that needs another instance defines its own `instance` fixture.
    """
    import dagster as dg

    from recsys_assets_tests.support.environment import PROJECT_EVENT_LOG

    with dg.instance_for_test(overrides={"event_log_storage": PROJECT_EVENT_LOG}) as test_instance:
        yield test_instance
