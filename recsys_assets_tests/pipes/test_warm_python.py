"""The warm starter gives each child what a fresh `python -m` would: the call's stdio, environment, folder,
settings and exit status; a busy starter is never shared; and no child outlives its orchestrator.

Real processes throughout: the starter is forked from, and the children run
`recsys_assets_tests.support.warm_child`, which reports what it was started with.
"""

import json
import os
import signal
import sys
from pathlib import Path

import pytest

from recsys_assets.pipes.warm_python import run_module
from recsys_assets.settings import process_environment

CHILD = "recsys_assets_tests.support.warm_child"
# The child imports the test package from here, as `python -m` run elsewhere would with PYTHONPATH.
REPO = str(Path(__file__).resolve().parents[2])

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the warm starter is Linux only"),
    pytest.mark.slow,  # every test starts a starter process, which imports the training libraries
]


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _run(tmp_path: Path, args: list[str], **env: str) -> tuple[int, str, str]:
    """Run the test child warm with `env` added; its exit status, stdout and stderr."""
    out_path, err_path = tmp_path / "out", tmp_path / "err"
    with (
        open(out_path, "w") as out,
        open(err_path, "w") as err,
        run_module(
            CHILD, args, {**process_environment(), "PYTHONPATH": REPO, **env}, stdout=out.fileno(), stderr=err.fileno()
        ) as child,
    ):
        status = child.wait(timeout=60)
    return status, out_path.read_text(), err_path.read_text()


def test_a_child_gets_the_calls_stdio_environment_folder_and_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, err = _run(tmp_path, ["report", "x y"], WARM_CHILD_MARKER="first", RECSYS_TRAINING_WINDOW_DAYS="11")
    first = json.loads(out)
    assert status == 0 and err == "to stderr\n"
    assert first["argv"] == ["report", "x y"] and first["cwd"] == str(tmp_path)
    assert first["marker"] == "first" and first["window"] == 11
    assert first["ppid"] != os.getpid(), "forked by the starter, not started by this process"

    # The same starter serves the next call, with that call's environment and settings, not the first's.
    status, out, _ = _run(tmp_path, ["report"], WARM_CHILD_MARKER="second", RECSYS_TRAINING_WINDOW_DAYS="12")
    second = json.loads(out)
    assert status == 0 and second["marker"] == "second" and second["window"] == 12
    assert second["ppid"] == first["ppid"] and second["pid"] != first["pid"]


def test_exit_statuses_are_those_of_the_module(tmp_path):
    assert _run(tmp_path, ["exit", "3"])[0] == 3
    status, _, err = _run(tmp_path, ["raise"])
    assert status == 1
    assert err.strip().splitlines()[-1] == "LookupError: raised in the child" and "Traceback" in err


def test_a_preloaded_entrypoint_runs_as_main_without_runpys_warning(tmp_path):
    # The starter imported the pairs engine already; its stderr must hold only what the module wrote.
    with (
        open(tmp_path / "err", "w") as err,
        run_module(
            "recsys_assets.domain.pairs_job",
            [str(tmp_path / "no-spec.json")],
            process_environment(),
            stderr=err.fileno(),
        ) as child,
    ):
        status = child.wait(timeout=60)
    lines = (tmp_path / "err").read_text().splitlines()
    assert status == 1 and len(lines) == 1 and lines[0].startswith("FileNotFoundError:"), lines


def test_a_busy_starter_is_not_shared_and_a_signal_ends_its_child(tmp_path):
    env = process_environment()
    with (
        open(tmp_path / "sleep.out", "w") as out,
        run_module(CHILD, ["sleep", "60"], env, stdout=out.fileno()) as sleeper,
    ):
        # A second call while the first child runs gets a starter of its own.
        status, report, _ = _run(tmp_path, ["report"])
        assert status == 0 and json.loads(report)["ppid"] != _parent(sleeper.pid)
        sleeper.send_signal(signal.SIGTERM)
        assert sleeper.wait(timeout=30) == -signal.SIGTERM
