"""`runs terminate RUN_ID`: a run left STARTED by a killed CLI is marked canceled, never one whose process lives.

A real persistent Dagster instance in the test's folder (DAGSTER_HOME); the killed CLI is a real process
that starts a run in it, records an event and dies by SIGKILL.
"""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest

from recsys_assets.cli import main
from recsys_assets_tests.support.environment import REPO_ROOT, local_env

PARTITION = "2026-02-28"

# A CLI run killed midway: its step kills the process (as `kill -9` or a lost machine would), so the
# run stays STARTED in the instance with the dead process's pid on its events.
KILLED_CLI = textwrap.dedent(
    """
    import os, signal
    import dagster as dg

    @dg.asset
    def trained_model():
        os.kill(os.getpid(), signal.SIGKILL)

    dg.materialize([trained_model], instance=dg.DagsterInstance.get(), tags={{"dagster/partition": "{partition}"}})
    """
)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    for name, value in local_env(tmp_path / "data", DAGSTER_HOME=str(tmp_path / "home")).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "dagster.yaml").write_text("")
    return tmp_path / "home"


def killed_cli_run() -> str:
    code = KILLED_CLI.format(partition=PARTITION)
    process = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert process.returncode == -signal.SIGKILL, process.stderr
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records()
        return record.dagster_run.run_id


def status(run_id: str) -> str:
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None
        return run.status.value


@pytest.mark.slow
def test_a_run_left_started_by_a_killed_cli_is_named_then_terminated(home, capsys):
    run_id = killed_cli_run()
    assert status(run_id) == "STARTED"

    assert main(["run", "--partition", PARTITION]) == 4
    refused = capsys.readouterr().err.strip().splitlines()[-1]
    assert refused.startswith(f"refused: run {run_id} of partition {PARTITION} is STARTED")
    assert f"`python -m recsys_assets runs terminate {run_id}`" in refused and "UI" not in refused

    assert main(["runs", "terminate", run_id]) == 0
    assert capsys.readouterr().out.strip() == f"run {run_id} -> CANCELED: its partition can run again"
    assert status(run_id) == "CANCELED"

    assert main(["runs", "terminate", run_id]) == 4
    assert "is CANCELED: it is not running" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_whose_process_is_alive_is_never_terminated(home, capsys):
    refusals = []

    @dg.asset
    def trained_model(context: dg.AssetExecutionContext) -> None:
        """Asks to terminate its own run, from the process running it."""
        refusals.append((main(["runs", "terminate", context.run_id]), capsys.readouterr().err))

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([trained_model], instance=instance)
    assert result.success  # the run went on: it was not marked canceled under its own feet
    (code, err), pid = refusals[0], os.getpid()
    assert code == 4 and f"is STARTED and its process {pid} is alive: wait for it, or stop it" in err
    assert status(result.run_id) == "SUCCESS"


@pytest.mark.slow
def test_an_unknown_run_is_refused_naming_the_instance(home, capsys):
    assert main(["runs", "terminate", "nope"]) == 4
    assert f"no run nope in this Dagster instance ({home})" in capsys.readouterr().err
