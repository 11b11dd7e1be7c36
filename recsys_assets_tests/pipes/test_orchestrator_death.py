"""A training worker launched by the local subprocess launcher dies with its orchestrator."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from recsys_assets.pipes.worker import ORCHESTRATOR_PID_ENV

# The orchestrator starts a worker the way the subprocess launcher does (its pid in the environment),
# prints the worker's pid once the worker has opened Pipes, and waits.
ORCHESTRATOR = textwrap.dedent(
    f"""
    import os, subprocess, sys, time
    worker = subprocess.Popen(
        [sys.executable, "-c", "import time; from recsys_assets.pipes.worker import open_training_pipes; "
         "open_training_pipes(); print('ready', flush=True); time.sleep(120)"],
        env={{**os.environ, "{ORCHESTRATOR_PID_ENV}": str(os.getpid())}},
        stdout=subprocess.PIPE,
    )
    assert worker.stdout.readline().strip() == b"ready"
    print(worker.pid, flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    try:
        return "\tZ" not in status.read_text().split("State:")[1].splitlines()[0]
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux only")
def test_the_worker_stops_when_the_orchestrator_is_killed():
    orchestrator = subprocess.Popen(
        [sys.executable, "-c", ORCHESTRATOR], stdout=subprocess.PIPE, env=os.environ.copy(), start_new_session=True
    )
    try:
        assert orchestrator.stdout is not None
        worker_pid = int(orchestrator.stdout.readline())
        assert _alive(worker_pid)
        os.kill(orchestrator.pid, signal.SIGKILL)
        orchestrator.wait()
        deadline = time.monotonic() + 5
        while _alive(worker_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker_pid), "the training worker outlived its killed orchestrator"
    finally:
        if orchestrator.poll() is None:
            os.killpg(orchestrator.pid, signal.SIGKILL)
