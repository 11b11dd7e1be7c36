"""Dagster's default run launcher, plus a worker health check so run monitoring can fail dead runs.

The default launcher starts each run worker as a local process but cannot tell whether it is still
alive: a worker killed with `kill -9` leaves its run STARTED, holding a queue slot until
`max_runtime_seconds`. Every run worker records its pid in an engine event ("pid" metadata); this
launcher looks that process up on this host, so the daemon's run monitoring marks the run failed at
its next poll and the queue moves.

Subclasses a Dagster internal (`dagster._core.launcher.DefaultRunLauncher`, with its health-check
types): it is tested against the pinned Dagster version (`recsys_assets.instance.TESTED_DAGSTER_VERSION`).
"""

from __future__ import annotations

import os

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run's worker last reported, or None before it reported one."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data else None
        if pid is not None and str(pid.value).isdigit():
            return int(str(pid.value))
    return None


def process_alive(pid: int) -> bool:
    """Whether `pid` is a running (not zombie) process on this host."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose run workers can be health-checked by run monitoring (same host)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(self._instance, run.run_id)
        # A STARTED run has reported its pid; without one there is nothing to judge, so leave it be.
        if pid is None or process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone (killed or crashed)")
