"""Launch `retrain_job` for one partition on a deployed Dagster and wait for its result (the `retrain` workflow).

    python scripts/launch_retrain.py --url https://dagster.example.com --partition 2026-11-28 \
        [--run-config '{"ops": {...}}'] [--timeout 7200]

Talks to the webserver's GraphQL API through Dagster's own client. Behind IAP the request carries the
Google identity token in `DAGSTER_AUTH_TOKEN` (the workflow gets it from Workload Identity Federation).
Exits 0 when the run succeeded, 1 when it failed or was canceled, 2 when it did not finish in time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import date
from urllib.parse import urlparse

from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

JOB_NAME = "retrain_job"
LOCATION = "recsys_assets"
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def client_for(url: str, token: str | None = None) -> DagsterGraphQLClient:
    """A GraphQL client for the webserver at `url` (http[s]://host[:port]), with a bearer token if given."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL of the Dagster webserver")
    return DagsterGraphQLClient(
        parsed.hostname,
        port_number=parsed.port,
        use_https=parsed.scheme == "https",
        headers={"Authorization": f"Bearer {token}"} if token else None,
    )


def launch(client: DagsterGraphQLClient, partition: str, run_config: dict | None = None) -> str:
    """Submit `retrain_job` for `partition`; returns the run id (the run may wait in the queue)."""
    return client.submit_job_execution(
        JOB_NAME,
        repository_location_name=LOCATION,
        run_config=run_config or {},
        tags={"dagster/partition": partition, "recsys/trigger": "retrain_workflow"},
    )


def wait(client: DagsterGraphQLClient, run_id: str, timeout: float, poll_seconds: float = 15) -> DagsterRunStatus:
    """The run's final status, or its current one when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.get_run_status(run_id)
        if status in FINISHED or time.monotonic() >= deadline:
            return status
        time.sleep(poll_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the Dagster webserver, e.g. https://dagster.example.com")
    parser.add_argument("--partition", required=True, help="the day to retrain on, YYYY-MM-DD")
    parser.add_argument(
        "--run-config", default="{}", help="run config as a JSON object (the launchpad's YAML, as JSON)"
    )
    parser.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to wait for the run")
    args = parser.parse_args(argv)
    try:
        date.fromisoformat(args.partition)
    except ValueError:
        parser.error(f"--partition {args.partition!r} is not a YYYY-MM-DD day")
    run_config = json.loads(args.run_config)
    if not isinstance(run_config, dict):
        parser.error("--run-config must be a JSON object")
    client = client_for(args.url, os.environ.get("DAGSTER_AUTH_TOKEN") or None)
    run_id = launch(client, args.partition, run_config)
    print(f"launched {JOB_NAME} run {run_id} for {args.partition}: {args.url.rstrip('/')}/runs/{run_id}")
    status = wait(client, run_id, args.timeout)
    print(f"run {run_id}: {status.value}")
    if status == DagsterRunStatus.SUCCESS:
        return 0
    return 1 if status in FINISHED else 2


if __name__ == "__main__":
    sys.exit(main())
