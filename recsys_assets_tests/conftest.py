"""Shared fixtures. Stand-ins for cloud services live in `standins/`, one module per service."""

import os

import pytest

# The test data (synthetic days in 2026, not the last 90 days) starts after this; set before the
# package reads its settings, and inherited by every process a test starts.
os.environ.setdefault("RECSYS_PARTITIONS_START", "2026-01-01")

pytest_plugins: list[str] = [
    "recsys_assets_tests.standins.s3",  # before vertex, which builds on its moto server
    "recsys_assets_tests.standins.vertex",
    "recsys_assets_tests.standins.secret_manager",
    "recsys_assets_tests.standins.github",
    "recsys_assets_tests.standins.bigquery",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
