"""A training worker launched by the local launcher (a subprocess, or a warm child and its starter) dies with its orchestrator."""

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


# The orchestrator starts a child warm, as the local launcher does, prints the child's pid once it runs, and waits.
WARM_ORCHESTRATOR = textwrap.dedent(
    """
    import sys, time
    from recsys_assets.pipes.warm_python import run_module
    from recsys_assets.settings import process_environment
    with open("/dev/null", "w") as sink, run_module(
        "recsys_assets_tests.support.warm_child", ["sleep", "120"], process_environment(), stdout=sink.fileno()
    ) as child:
        print(child.pid, flush=True)
        time.sleep(120)
    """
)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux only")
@pytest.mark.parametrize("script", [ORCHESTRATOR, WARM_ORCHESTRATOR], ids=["subprocess", "warm"])
def test_the_worker_stops_when_the_orchestrator_is_killed(script):
    orchestrator = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env=os.environ.copy(), start_new_session=True
    )
    try:
        assert orchestrator.stdout is not None
        worker_pid = int(orchestrator.stdout.readline())
        # A warm child's parent is the starter, which must not outlive the orchestrator either.
        processes = {worker_pid, _parent(worker_pid)} - {orchestrator.pid}
        assert all(_alive(pid) for pid in processes)
        os.kill(orchestrator.pid, signal.SIGKILL)
        orchestrator.wait()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in processes) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in processes), "a training process outlived its killed orchestrator"
    finally:
        if orchestrator.poll() is None:
            os.killpg(orchestrator.pid, signal.SIGKILL)
