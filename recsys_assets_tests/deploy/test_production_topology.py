"""The production topology on this machine: code server, webserver and daemon as separate processes on PostgreSQL.

`deploy/dagster.yaml` is used as shipped except for what cannot exist here: the run launcher (no Docker
engine: `recsys_assets.instance.run_launcher.LocalRunLauncher`, a `DefaultRunLauncher` whose health check run monitoring can use),
the compute logs' staging folder, and a shorter monitoring poll. Its PostgreSQL connection comes from
the same `DAGSTER_PG_*` variables as in production (a fresh database, dropped afterwards), and its GCS
compute logs go to `gcp-storage-emulator`. `deploy/workspace.yaml` is used unchanged. Slack is a local
HTTP stand-in (pytest-httpserver) that the real Slack SDK posts to.

The story: new events → the partition sensor's tick requests the extracts → the daemon runs them; the
daemon stops, a run is submitted while it is down and the retrain schedule is switched on → after the
restart the sensor's cursor is intact (no extract requested twice) and the queued run runs; the retrain
schedule's tick starts a retrain, its run worker is `kill -9`ed → run monitoring fails the run and
run retries re-launch it → the retry releases a bundle; the queued run was broken (its partition has
no extracts) → the failure reaches the Slack stand-in with the run's details, and it is not retried.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
import yaml
from pytest_httpserver import HTTPServer

from recsys_assets.domain.synthetic import WINDOW_SPEC, generate_events
from recsys_assets.instance.run_launcher import worker_pid
from recsys_assets.resources import build_resources
from scripts.launch_retrain import client_for, launch, wait

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
BIN = Path(sys.executable).parent
LOCATION = "recsys_assets"
SLACK_TOKEN = "xoxb-e2e-not-a-real-token"
LOGS_BUCKET = "recsys-compute-logs"
# The sensor extracts only days that have events; a full 28-day window, since the scheduled retrain runs
# with the default configuration, whose 7-day global cut needs more than 14 days.
WINDOW_DAYS = WINDOW_SPEC.n_days

LOCATIONS = """{ workspaceOrError { ... on Workspace { locationEntries {
  name locationOrLoadError { __typename } } } } }"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGTERM the process group, SIGKILL it if it has not exited in time (processes here may ignore SIGTERM)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def wait_for(what: str, condition: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named database on the machine's PostgreSQL, dropped afterwards."""
    name = f"recsys_e2e_{uuid.uuid4().hex[:12]}"
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"]
    subprocess.run([*psql, f"CREATE DATABASE {name}"], check=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run([*psql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], check=True, timeout=60)


@pytest.fixture
def compute_logs_gcs() -> Iterator[str]:
    """`gcp-storage-emulator` with the compute-log bucket; yields its URL for STORAGE_EMULATOR_HOST."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=LOGS_BUCKET)
    server.start()
    try:
        yield f"http://127.0.0.1:{server._api._httpd.server_address[1]}"  # no public accessor for the port
    finally:
        server.stop()


class Topology:
    """The three Dagster processes of the production deployment, and the instance they share."""

    def __init__(self, home: Path, env: dict[str, str], logs: Path, webserver_port: int, code_port: int) -> None:
        self.home, self.env, self.logs = home, env, logs
        self.webserver_port, self.code_port = webserver_port, code_port
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.graphql_url = f"http://127.0.0.1:{webserver_port}/graphql"

    def start(self, name: str, *args: str) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [str(BIN / args[0]), *args[1:]],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so everything it started is stopped with it
            )

    def start_code_server(self) -> None:
        self.start(
            "code_server",
            *("dagster", "code-server", "start", "-h", "127.0.0.1", "-p", str(self.code_port)),
            *("-m", "recsys_assets.definitions"),
        )

    def start_daemon(self) -> None:
        self.start("daemon", "dagster-daemon", "run", "-w", str(DEPLOY / "workspace.yaml"))

    def stop(self, name: str) -> None:
        stop_group(self.processes.pop(name))

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)

    def cli(self, *args: str) -> None:
        subprocess.run(
            [str(BIN / "dagster"), *args, "-w", str(DEPLOY / "workspace.yaml")],
            cwd=REPO_ROOT,
            env=self.env,
            check=True,
            timeout=180,
            capture_output=True,
        )

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(self.graphql_url, json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        return response.json()["data"]

    def location_loaded(self) -> bool:
        try:
            entries = self.graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        except (requests.RequestException, KeyError, TypeError):
            return False
        return any(
            e["name"] == LOCATION and e["locationOrLoadError"]["__typename"] == "RepositoryLocation" for e in entries
        )

    def wait_for(self, what: str, condition: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
        """`wait_for`, failing with the tail of every process's log."""
        try:
            return wait_for(what, condition, timeout, every)
        except pytest.fail.Exception:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.log_tail()}")

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def topology(tmp_path, postgres_database, compute_logs_gcs, httpserver: HTTPServer) -> Iterator[Topology]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    instance_config = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    # No Docker engine here: the local launcher the embedded instance uses, which health-checks workers.
    instance_config["run_launcher"] = {"module": "recsys_assets.instance.run_launcher", "class": "LocalRunLauncher"}
    instance_config["compute_logs"]["config"]["local_dir"] = str(tmp_path / "compute_logs")
    instance_config["run_monitoring"]["poll_interval_seconds"] = 2
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config))

    webserver_port, code_port = free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": "127.0.0.1",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_DB": postgres_database,
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "unused-with-trust-auth",
        "DAGSTER_COMPUTE_LOGS_BUCKET": LOGS_BUCKET,
        "STORAGE_EMULATOR_HOST": compute_logs_gcs,
        "RECSYS_CODE_SERVER_HOST": "127.0.0.1",
        "RECSYS_CODE_SERVER_PORT": str(code_port),
        "RECSYS_DATA_DIR": str(tmp_path / "data"),
        "RECSYS_TRAINING_WINDOW_DAYS": str(WINDOW_DAYS),
        "RECSYS_AUTOMATION": "running",
        "RECSYS_RETRAIN_CRON": "* * * * *",
        "RECSYS_ALERT_SLACK_CHANNEL": "#recsys-alerts",
        "RECSYS_SLACK_API_URL": httpserver.url_for("/api/"),
        "RECSYS_SECRET_SLACK_BOT_TOKEN": SLACK_TOKEN,
        "RECSYS_UI_URL": f"http://127.0.0.1:{webserver_port}",
        "OPENBLAS_NUM_THREADS": "1",
    }
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_json(
        {"ok": True, "channel": "C0ALERTS", "ts": "1700000000.000100"}
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    topo = Topology(home, env, logs, webserver_port, code_port)
    saved_env = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith(("DAGSTER_", "STORAGE_"))})
    try:
        topo.start_code_server()
        topo.start(
            "webserver",
            "dagster-webserver",
            *("-h", "127.0.0.1", "-p", str(webserver_port), "-w", str(DEPLOY / "workspace.yaml")),
        )
        yield topo
    except BaseException:
        print(topo.log_tail())
        raise
    finally:
        topo.stop_all()
        os.environ.clear()
        os.environ.update(saved_env)


def runs(instance: dg.DagsterInstance, job_name: str) -> list[dg.DagsterRun]:
    return list(instance.get_runs(filters=dg.RunsFilter(job_name=job_name)))


def sensor_cursor(instance: dg.DagsterInstance, name: str) -> str | None:
    states = [s for s in instance.all_instigator_state() if s.name == name]
    assert len(states) == 1, f"expected one stored state for {name}, found {len(states)}"
    data = states[0].instigator_data
    return getattr(data, "cursor", None)


def slack_messages(httpserver: HTTPServer) -> list[tuple[dict[str, Any], str]]:
    return [(request.get_json(), request.headers.get("Authorization", "")) for request, _ in httpserver.log]


def test_production_topology_runs_recovers_and_alerts(topology: Topology, httpserver: HTTPServer, tmp_path):
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date()
    spec = replace(WINDOW_SPEC, end_date=yesterday)
    broken_partition = (yesterday - timedelta(days=60)).isoformat()  # in range, never extracted
    env_for_resources = {k: v for k, v in topology.env.items() if k.startswith("RECSYS_")}

    topology.wait_for("the webserver to load the code location from the code server", topology.location_loaded, 180)
    with dg.DagsterInstance.from_config(str(topology.home)) as instance:
        # Automation is RUNNING by default here; the retrain schedule is switched off until the extracts exist.
        topology.cli("schedule", "stop", "retrain_schedule")

        # New events in the warehouse → the sensor's first tick requests one extract per day.
        build_resources(env_for_resources)["warehouse"].replace_days(generate_events(spec))
        topology.start_daemon()
        extracts = topology.wait_for(
            f"{spec.n_days} sensor-requested extracts to succeed",
            lambda: (
                done
                if len(done := [r for r in runs(instance, "interactions_job") if r.is_success]) == spec.n_days
                else None
            ),
            420,
            every=3,
        )
        assert {r.tags["dagster/sensor_name"] for r in extracts} == {"new_interaction_partitions"}
        assert sorted(r.tags["dagster/partition"] for r in extracts) == sorted(
            (yesterday - timedelta(days=i)).isoformat() for i in range(spec.n_days)
        )
        cursor = sensor_cursor(instance, "new_interaction_partitions")
        # The cursor is a watermark: every warehouse day modified up to `through` has been handled.
        assert cursor and json.loads(cursor)["through"] is not None

        # The daemon goes down; meanwhile a run is submitted through the webserver and the schedule is started.
        topology.stop("daemon")
        # The `retrain` workflow's client submits through the webserver; with no daemon the run waits in the queue.
        client = client_for(topology.env["RECSYS_UI_URL"])
        broken_run_id = launch(client, broken_partition)
        time.sleep(3)
        assert client.get_run_status(broken_run_id) == dg.DagsterRunStatus.QUEUED
        topology.cli("schedule", "start", "retrain_schedule")

        topology.start_daemon()
        # The run submitted while the daemon was down is launched, and fails (its partition has no extracts).
        assert wait(client, broken_run_id, timeout=240, poll_seconds=2) == dg.DagsterRunStatus.FAILURE

        # The retrain schedule's tick starts a retrain; its worker is killed with SIGKILL once it runs.
        def started_retrain() -> tuple[dg.DagsterRun, int] | None:
            for run in runs(instance, "retrain_job"):
                if run.tags.get("dagster/schedule_name") == "retrain_schedule" and run.status == (
                    dg.DagsterRunStatus.STARTED
                ):
                    pid = worker_pid(instance, run.run_id)
                    return (run, pid) if pid else None
            return None

        killed_run, pid = topology.wait_for("the scheduled retrain to start", started_retrain, 150, every=0.2)
        assert killed_run.tags["dagster/partition"] == yesterday.isoformat()
        os.kill(pid, signal.SIGKILL)

        killed = topology.wait_for(
            "run monitoring to fail the killed run",
            lambda: r if (r := instance.get_run_by_id(killed_run.run_id)) and r.is_finished else None,
            120,
            every=1,
        )
        assert killed.status == dg.DagsterRunStatus.FAILURE
        retry = topology.wait_for(
            "the retry of the killed run to succeed",
            lambda: next(
                (
                    r
                    for r in runs(instance, "retrain_job")
                    if r.tags.get("dagster/parent_run_id") == killed_run.run_id and r.is_finished
                ),
                None,
            ),
            300,
            every=2,
        )
        assert retry.status == dg.DagsterRunStatus.SUCCESS, topology.log_tail()
        assert retry.tags["dagster/partition"] == yesterday.isoformat()
        # The retry wrote a bundle and proposed its release (the champion moves only once it is merged).
        registry = tmp_path / "data" / "model_store" / "models" / "jobs-als" / "registry.json"
        assert registry.is_file(), "the retry proposed no release"
        assert "proposed" in registry.read_text(), registry.read_text()

        # A step failure is the graph's verdict, not an infrastructure failure: the broken run is not retried.
        assert not [r for r in runs(instance, "retrain_job") if r.tags.get("dagster/parent_run_id") == broken_run_id]

        # The restart lost no sensor state: the cursor is intact and no day was extracted twice.
        assert sensor_cursor(instance, "new_interaction_partitions") == cursor
        assert len(runs(instance, "interactions_job")) == spec.n_days

        # The failure reached Slack with the run's details, through the token read from the secrets resource.
        def broken_alert() -> tuple[dict[str, Any], str] | None:
            return next(((m, auth) for m, auth in slack_messages(httpserver) if broken_run_id in m["text"]), None)

        message, authorization = topology.wait_for("the Slack alert for the broken run", broken_alert, 120, every=2)
        assert authorization == f"Bearer {SLACK_TOKEN}"
        assert message["channel"] == "#recsys-alerts"
        text = message["text"]
        assert "retrain_job" in text and broken_run_id in text and broken_partition in text
        assert "step `" in text and "> " in text  # the failed step and the cause's last line
        assert f"{topology.env['RECSYS_UI_URL']}/runs/{broken_run_id}" in text
        assert SLACK_TOKEN not in text

        # Compute logs went to (emulated) GCS.
        from google.cloud import storage

        blobs = list(storage.Client().list_blobs(LOGS_BUCKET))
        assert blobs, "no compute logs were uploaded to GCS"
