"""The README's commands: demo on an empty warehouse, and MovieLens import followed by run."""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from recsys_assets.cli import main
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.data import MOVIELENS_SPEC, write_movielens_u_data
from recsys_assets_tests.support.service import eventually

pytestmark = pytest.mark.slow
# The default window (28 days), so the default 7-day global cut applies, with about as many events as SMALL_SPEC.


def test_demo_seeds_an_empty_warehouse_and_prints_the_selection_both_protocols_and_the_bundle(embedded_env, capsys):
    # The default 28-day window, so the default 7-day global cut has days to fit, validate and hold out.
    args = ["demo", "--users", "600", "--items", "300", "--days", "28", "--events-per-day", "900"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "seeded" in out and "Candidates tried" in out and "| popularity |" in out
    family = out.split("\nselected: ", 1)[1].split()[0]
    assert f"| model ({family}) |" in out
    assert "per_user holdout of partition" in out and "global_cut holdout of partition" in out
    version = bundle_version(out)
    manifest = json.loads(
        (embedded_env / "model_store/models" / SETTINGS.model_name / version / "manifest.json").read_text()
    )
    assert manifest["model"]["family"] == family and manifest["protocol"] == "global_cut"
    assert set(manifest["protocols"]) == {"per_user", "global_cut"}
    assert manifest["metrics"]["model"]["ndcg@10"] > manifest["metrics"]["baselines"]["popularity"]["ndcg@10"]

    # Then the day's served lists for three users (popularity's until a release is merged) and the outcome
    # of the day before's lists against the counterfactual.
    assert "served lists of " in out and "no champion released yet: these are popularity's lists" in out
    assert out.count(": popularity none (fallback)") == 3
    assert "outcome of the lists served on " in out and "for popularity over the last 7 days (lift " in out

    # The demo ends with how to serve the new version and a list to ask it for.
    hint = out.strip().splitlines()[-4:]
    assert hint[0] == "Serve the champion over HTTP (it follows promotions without a restart):"
    assert hint[1].split("#")[0].strip() == f".venv/bin/python -m recsys_assets models merge {version}"
    assert hint[2].strip() == ".venv/bin/python -m recsys_assets serve --port 8000"
    url = hint[3].strip().removeprefix("curl -s ").strip("'")
    assert url.startswith("http://127.0.0.1:8000/v1/users/") and url.endswith("/recommendations?n=5")
    assert main(["models", "merge", version]) == 0
    with serve_command(["--reload-seconds", "0.2"]) as base_url:
        response = eventually(lambda: _get(url.replace("http://127.0.0.1:8000", base_url)))
    assert response.status_code == 200 and response.headers["X-Model-Version"] == version
    assert response.json()["source"] == "model" and len(response.json()["items"]) == 5

    assert main(args) == 0  # a second demo reuses the data instead of seeding again
    assert "seeded" not in capsys.readouterr().out


def bundle_version(out: str) -> str:
    """The version in the CLI's `model bundle <version>: <path>` line."""
    line = next(line for line in reversed(out.splitlines()) if line.startswith("model bundle "))
    return line.split()[2].rstrip(":")


def _get(url: str) -> httpx.Response | None:
    """The answer once the service serves a champion; None while it starts or loads."""
    try:
        response = httpx.get(url, timeout=5)
    except httpx.TransportError:
        return None
    return response if response.status_code != 503 else None


@contextmanager
def serve_command(extra: list[str]) -> Iterator[str]:
    """`python -m recsys_assets serve` on a free loopback port, in its own process group, stopped on exit."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "recsys_assets", "serve", "--port", str(port), *extra]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            # Some shells here start processes that ignore SIGTERM (FACTS.md): the group is killed if it lingers.
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
            log.seek(0)
            print(log.read().decode(errors="replace")[-4000:])  # shown by pytest when the test fails


def test_a_window_too_short_for_the_global_cut_fails_at_the_training_set_naming_the_setting(embedded_env, capsys):
    args = ["demo", "--users", "300", "--items", "150", "--days", "10", "--events-per-day", "800"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("run failed: training_set: ")
    assert "training_set.cut_days=7 is too long for 10 days of data" in err[-1]
    assert "Lower training_set.cut_days to at most 4" in err[-1]


def test_movielens_u_data_import_then_run_produces_a_bundle(embedded_env, capsys):
    path = embedded_env / "u.data"
    written = write_movielens_u_data(path, MOVIELENS_SPEC)

    assert main(["import-events", str(path), "--format", "movielens", "--min-rating", "3"]) == 0
    imported = capsys.readouterr().out
    assert f"into {MOVIELENS_SPEC.n_days} daily partitions" in imported
    # It ends with the history's span, the window and the cut that fit it, then what to run.
    assert f"history: {MOVIELENS_SPEC.n_days} days, " in imported and "global cut: " in imported
    assert imported.strip().splitlines()[-1] == "next: python -m recsys_assets run"
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert f"global_cut holdout of partition {MOVIELENS_SPEC.end_date.isoformat()}" in out
    version = bundle_version(out)
    manifest = json.loads(
        (embedded_env / "model_store/models" / SETTINGS.model_name / version / "manifest.json").read_text()
    )
    assert set(manifest["metrics"]["model"]) == {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage"}
    assert manifest["data"]["events"] == written


def test_run_on_an_empty_warehouse_says_what_to_do(embedded_env):
    with pytest.raises(SystemExit, match="holds no events"):
        main(["run"])
