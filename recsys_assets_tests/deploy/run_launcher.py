"""The local stand-in for the production run launcher's health check, used by the end-to-end test.

`DockerRunLauncher` and `K8sRunLauncher` tell run monitoring whether a run's container or pod is alive;
Dagster's `DefaultRunLauncher` (a run worker process per run, started by the code server) cannot, so a
`kill -9`ed worker would stay STARTED forever. This launcher answers the same question for a local
process: the worker's pid is the one Dagster records in the run's "Started process for run" event.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the run's worker process, from the engine event Dagster writes when it starts."""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        event = record.event_log_entry.dagster_event
        pid = event.engine_event_data.metadata.get("pid") if event and event.engine_event_data else None
        if pid is not None:
            return int(str(pid.value))
    return None


def process_alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (dead, not yet reaped by its parent) counts as dead."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return False
    return fields[0] != "Z"


class ProcessCheckingRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose run monitoring notices a run worker that died without reporting."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        pid = worker_pid(self._instance, run.run_id)
        if pid is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, "no worker pid recorded yet")
        if process_alive(pid):
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone")
