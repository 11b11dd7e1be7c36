"""`dagster dev` from the repository root (workspace.yaml) serves the graph, and "Materialize all" works through it.

Starts the real `dagster dev` (webserver, daemon and code server) on 127.0.0.1 and drives it
through the same GraphQL API the UI's "Materialize all" button calls.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from recsys_assets.cli.pipeline import window
from recsys_assets.domain.synthetic import WINDOW_SPEC
from recsys_assets_tests.support.environment import ASSET_KEYS, local_env, local_resources, seed

REPO_ROOT = Path(__file__).resolve().parents[2]

LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidStepError { invalidStepKey }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
ASSETS = "{ assetNodes { assetKey { path } groupName description } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dagster_dev(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, **local_env(tmp_path / "data"), "DAGSTER_HOME": str(home)}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.post(url, json={"query": ASSETS}, timeout=5).json()["data"]["assetNodes"]:
                    break
            except (requests.RequestException, KeyError, TypeError):
                pass
            assert process.poll() is None, "dagster dev exited during start-up"
            time.sleep(1)
        else:
            pytest.fail("dagster dev did not serve the code location within 120 s")
        yield url, tmp_path / "data"
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def graphql(url: str, query: str, **variables) -> dict:
    response = requests.post(url, json={"query": query, "variables": variables}, timeout=30)
    response.raise_for_status()
    return response.json()["data"]


def test_ui_shows_the_graph_and_materialize_all_succeeds(dagster_dev):
    url, data_dir = dagster_dev
    nodes = graphql(url, ASSETS)["assetNodes"]
    assert sorted(n["assetKey"]["path"][0] for n in nodes) == sorted(ASSET_KEYS)
    assert all(n["description"] for n in nodes)

    # The window's extracts come first (a backfill in the UI); then "Materialize all" for the day.
    resources = local_resources(data_dir)
    # A full window: "Materialize all" runs with the default configuration (a 7-day global cut).
    seed(resources, WINDOW_SPEC)
    partition = WINDOW_SPEC.end_date.isoformat()
    start, end = window(partition)
    with dg.instance_for_test() as scratch:
        from recsys_assets.definitions import ASSETS as DEFINED

        assert dg.materialize(
            DEFINED,
            selection=["interactions"],
            resources=resources,
            instance=scratch,
            tags={"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end},
        ).success

    params = {
        "selector": {
            "repositoryLocationName": "recsys_assets",
            "repositoryName": "__repository__",
            "jobName": "__ASSET_JOB",
            "assetSelection": [{"path": [k]} for k in ASSET_KEYS],
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = graphql(url, LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 240
    status = None
    while time.monotonic() < deadline:
        status = graphql(url, RUN_STATUS, id=run_id)["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(1)
    assert status == "SUCCESS"
    assert list((data_dir / "model_store" / "models").rglob("manifest.json"))
