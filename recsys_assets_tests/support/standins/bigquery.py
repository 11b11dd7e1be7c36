"""A local BigQuery: the `bqemulator` package (DuckDB-backed), reached by the real `google-cloud-bigquery` client.

`bqemulator` answers BigQuery's REST API (datasets, tables, query and load jobs) and the Storage Read
gRPC API from an in-memory DuckDB database, translating GoogleSQL with sqlglot. The warehouse relies
on exactly what it does well: day-partitioned tables, named query parameters (scalars and arrays),
MERGE with `WHEN NOT MATCHED BY SOURCE`, Parquet load jobs and `INFORMATION_SCHEMA.PARTITIONS`.
It runs from its own virtualenv in `.emulators/bigquery` (it needs DuckDB 1.5 where the project
pins 2.x), made by `scripts/install_bigquery_emulator.sh`.

Not modelled, and worked around or left to the DuckDB warehouse's tests:
- Per-partition `last_modified_time`: every partition carries the table's metadata time, which DML
  does not move, so a late change to an old day is invisible here (the sensor's late-data logic is
  tested on DuckDB, which records a time per day).
- Storage reads of query results (reads of tables work): tests turn `use_storage_api` off for queries.
- Multipart upload of load jobs: the warehouse always uploads resumably (it never passes `size`), which
  works; a test calling `load_table_from_file(size=...)` or `load_table_from_dataframe` itself would need
  `google.cloud.bigquery.client._MAX_MULTIPART_SIZE = 0`.
- `client.list_partitions`, WRITE_TRUNCATE into `table$YYYYMMDD`, IAM (nothing is ever denied).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from recsys_assets.settings import REPO_ROOT

# The client libraries are imported where used: every test process loads this plugin, few use BigQuery.
if TYPE_CHECKING:
    from google.cloud import bigquery

    from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse

EMULATOR_DIR = Path(os.environ.get("BIGQUERY_EMULATOR_DIR", REPO_ROOT / ".emulators" / "bigquery"))
EMULATOR_BIN = EMULATOR_DIR / "venv" / "bin" / "bqemulator"
EMULATOR_HOME = EMULATOR_DIR / "home"  # holds .duckdb/extensions, so DuckDB never tries to download one
PROJECT = "recsys-test"
STARTUP_TIMEOUT_SECONDS = 60.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (for "unreachable" tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class BigQueryEmulator:
    """A running emulator process.

    Attributes:
        rest_endpoint: Base URL for `BigQueryWarehouse.endpoint` / `ClientOptions(api_endpoint=...)`.
        grpc_endpoint: host:port of the Storage Read API, for `BigQueryWarehouse.storage_endpoint`.
        project: Default project id of the emulator.
        log_path: The emulator's JSON log, quoted in failures.
    """

    rest_endpoint: str
    grpc_endpoint: str
    project: str
    log_path: Path

    def client(self) -> bigquery.Client:
        """A real BigQuery client on the emulator, with no credentials."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.rest_endpoint),
        )


@dataclass
class BigQueryStandIn:
    """An empty dataset of its own on the session's emulator.

    Attributes:
        emulator: The emulator the dataset lives on.
        dataset: The dataset created for this test (deleted with its tables afterwards).
        table: The events table name the warehouses built here use (created on first write).
        clients: Every client handed out, closed at teardown.
    """

    emulator: BigQueryEmulator
    dataset: str
    table: str = "events"
    clients: list[bigquery.Client] = field(default_factory=list)

    def client(self) -> bigquery.Client:
        client = self.emulator.client()
        self.clients.append(client)
        return client

    def warehouse(self, **overrides: Any) -> BigQueryWarehouse:
        """A `BigQueryWarehouse` on this dataset; query results come over REST, which the emulator can serve."""
        config: dict[str, Any] = {
            "project": self.emulator.project,
            "dataset": self.dataset,
            "table": self.table,
            "location": "US",
            "endpoint": self.emulator.rest_endpoint,
            "storage_endpoint": self.emulator.grpc_endpoint,
            "anonymous_credentials": True,
            "use_storage_api": False,
            "timeout_seconds": 30.0,
            "retry_deadline_seconds": 10.0,
            "job_timeout_seconds": 120.0,
        }
        from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse

        return BigQueryWarehouse(**{**config, **overrides})

    def env(self) -> dict[str, str]:
        """The `RECSYS_BQ_*` variables that make `build_warehouse` pick this dataset."""
        return {
            "RECSYS_WAREHOUSE": "bigquery",
            "RECSYS_BQ_PROJECT": self.emulator.project,
            "RECSYS_BQ_LOCATION": "US",
            "RECSYS_BQ_DATASET": self.dataset,
            "RECSYS_BQ_TABLE": self.table,
            "RECSYS_BQ_ENDPOINT": self.emulator.rest_endpoint,
            "RECSYS_BQ_STORAGE_ENDPOINT": self.emulator.grpc_endpoint,
            "RECSYS_BQ_USE_STORAGE_API": "false",
        }

    def query_texts(self) -> list[str]:
        """SQL of every query job the emulator ran that mentions this test's dataset, as the server saw it."""
        from google.cloud import bigquery

        return [
            job.query
            for job in self.client().list_jobs(max_results=1000)
            if isinstance(job, bigquery.QueryJob) and self.dataset in job.query
        ]


def _listen_ports(log_path: Path) -> dict[str, int]:
    ports: dict[str, int] = {}
    for line in log_path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") in ("rest.listen", "grpc.listen"):
            ports[record["event"]] = int(record["port"])
    return ports


def _log_tail(log_path: Path, lines: int = 30) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:]) if log_path.exists() else ""


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigQueryEmulator]:
    """One BigQuery emulator process for the session, on free ports of 127.0.0.1, stopped at the end.

    Stand-in: `bqemulator` (PyPI), a DuckDB-backed BigQuery REST + Storage gRPC emulator, because it is
    the one emulator that runs here on Python 3.11 and serves what the warehouse uses: partitioned
    tables, parameterised queries, MERGE, Parquet loads and INFORMATION_SCHEMA.PARTITIONS (limits in the
    module docstring). Skips when it is not installed (run `scripts/install_bigquery_emulator.sh`),
    except under CI, where a missing emulator fails the tests instead.
    """
    if not EMULATOR_BIN.exists():
        message = f"BigQuery emulator not installed at {EMULATOR_BIN}: run scripts/install_bigquery_emulator.sh"
        if _in_ci():
            pytest.fail(message)
        pytest.skip(message)

    log_path = tmp_path_factory.mktemp("bigquery-emulator") / "emulator.log"
    env = {
        **os.environ,
        "HOME": str(EMULATOR_HOME),
        "PYTHONUNBUFFERED": "1",  # the log file is how the fixture learns the ports
    }
    command = [
        str(EMULATOR_BIN),
        "start",
        "--ephemeral",
        "--project",
        PROJECT,
        "--rest-host",
        "127.0.0.1",
        "--rest-port",
        "0",
        "--grpc-host",
        "127.0.0.1",
        "--grpc-port",
        "0",
        "--log-format",
        "json",
        "--log-level",
        "info",
    ]
    with log_path.open("wb") as log:
        # Logs go to a file, not a pipe: an unread pipe would fill up and stall the emulator.
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        ports = _listen_ports(log_path)
        while len(ports) < 2:
            if process.poll() is not None:
                pytest.fail(f"BigQuery emulator exited with {process.returncode}:\n{_log_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"BigQuery emulator not listening after {STARTUP_TIMEOUT_SECONDS:g}s:\n{_log_tail(log_path)}"
                )
            time.sleep(0.05)
            ports = _listen_ports(log_path)

        yield BigQueryEmulator(
            rest_endpoint=f"http://127.0.0.1:{ports['rest.listen']}",
            grpc_endpoint=f"127.0.0.1:{ports['grpc.listen']}",
            project=PROJECT,
            log_path=log_path,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def bigquery_standin(bigquery_emulator: BigQueryEmulator) -> Iterator[BigQueryStandIn]:
    """A fresh, empty dataset on the session's BigQuery emulator (see `bigquery_emulator` for the stand-in)."""
    standin = BigQueryStandIn(emulator=bigquery_emulator, dataset=f"t_{uuid.uuid4().hex[:10]}")
    admin = standin.client()
    admin.create_dataset(standin.dataset)
    try:
        yield standin
    finally:
        try:
            admin.delete_dataset(standin.dataset, delete_contents=True, not_found_ok=True)
        finally:
            for client in standin.clients:
                client.close()
