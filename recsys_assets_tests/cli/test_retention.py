"""Retention: `gc` removes old run folders and the files of bundles nobody needs, never what the registry or a
running run needs; `--dry-run` removes nothing; the weekly schedule runs the same pass.

On the embedded default with a persistent Dagster instance in the test's folder (DAGSTER_HOME), so a run
left STARTED is a real run record; bundles and their states come from the `models` CLI.
"""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.dagster_run import DagsterRun, DagsterRunStatus

from recsys_assets.cli import main
from recsys_assets.domain.layout import ModelStoreKeys
from recsys_assets.resources import build_resources
from recsys_assets.retention import collect
from recsys_assets.schedules import GC_CRON, build_schedules
from recsys_assets.settings import SETTINGS, Settings
from recsys_assets_tests.support.bundles import publish_version
from recsys_assets_tests.support.environment import local_env

KEYS = ModelStoreKeys(SETTINGS.model_name)
DAY = "2026-02-28"
OLD = datetime.now(UTC) - timedelta(days=10)
# Versions named as the bundle step names them, created long ago.
V = [f"2026010{i}T000000Z-run{i}" for i in range(1, 7)]


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    for name, value in local_env(tmp_path / "data", DAGSTER_HOME=str(tmp_path / "home")).items():
        monkeypatch.setenv(name, value)
    (tmp_path / "home").mkdir()
    return tmp_path / "data"


def run_folder(data: Path, asset: str, run_id: str, modified: datetime = OLD) -> Path:
    folder = data / "artifacts" / asset / DAY / "runs" / run_id
    folder.mkdir(parents=True)
    (folder / "train.npz").write_bytes(b"x" * 1000)
    os.utime(folder / "train.npz", (modified.timestamp(), modified.timestamp()))
    return folder


def models(capsys, *args: str) -> str:
    assert main(["models", *args]) == 0
    return capsys.readouterr().out


def gc(capsys, *args: str) -> str:
    assert main(["gc", *args]) == 0
    return capsys.readouterr().out


def registry_fixture(data: Path, capsys) -> None:
    """V[0] released then superseded by V[1] then V[2] (the champion); V[3] proposed; V[4] rejected; V[5] never proposed."""
    store = build_resources()["model_store"]
    for version in V:
        publish_version(store, version)
    for version in V[:3]:
        models(capsys, "promote", version)
        models(capsys, "merge", version)
    models(capsys, "promote", V[3])
    models(capsys, "promote", V[4])
    models(capsys, "reject", V[4])


def bundle_files(data: Path, version: str) -> set[str]:
    folder = data / "model_store" / KEYS.bundle_prefix(version)
    return {p.name for p in folder.iterdir() if p.is_file()}


@pytest.mark.slow
def test_gc_removes_old_runs_keeping_the_latest_and_the_running(data, capsys):
    with dg.DagsterInstance.get() as instance:
        instance.add_run(DagsterRun(job_name="retrain_job", run_id="running", status=DagsterRunStatus.STARTED))
    for age, run_id in enumerate(["r5", "r4", "r3", "r2", "r1", "running"]):
        run_folder(data, "training_set", run_id, OLD - timedelta(hours=age))

    abandoned = data / "model_store" / ".staging" / "v9-0123abcd" / "models" / "m" / "v9"
    abandoned.mkdir(parents=True)
    (abandoned / "model.npz").write_bytes(b"x" * 500)
    os.utime(abandoned / "model.npz", (OLD.timestamp(), OLD.timestamp()))

    dry = gc(capsys, "--dry-run")
    runs = data / "artifacts" / "training_set" / DAY / "runs"
    assert sorted(p.name for p in runs.iterdir()) == ["r1", "r2", "r3", "r4", "r5", "running"]
    assert abandoned.exists()
    assert "would remove" in dry and dry.strip().endswith("3 item(s), would free 2.5 kB")

    out = gc(capsys)
    assert sorted(p.name for p in runs.iterdir()) == ["r3", "r4", "r5", "running"]
    assert f"removed {runs / 'r1'} (1.0 kB)" in out and out.strip().endswith("3 item(s), freed 2.5 kB")
    assert not (data / "model_store" / ".staging" / "v9-0123abcd").exists()


@pytest.mark.slow
def test_gc_prunes_unneeded_bundles_never_the_champion_proposed_or_rollback_target(data, capsys):
    registry_fixture(data, capsys)
    states = models(capsys, "list")
    assert "rejected" in states and "proposed" in states
    for version in V:  # the runs that wrote every bundle, old enough to go
        run_folder(data, "model_bundle", f"run-{version}")
    for extra in ("x1", "x2", "x3"):
        run_folder(data, "model_bundle", extra, OLD + timedelta(hours=1))

    out = gc(capsys)  # today: the version that was never proposed is old, the others changed state just now
    assert f"bundle {SETTINGS.model_name}/{V[5]} (never proposed" in out
    assert bundle_files(data, V[5]) == {"manifest.json"}
    assert all(bundle_files(data, v) == {"manifest.json", "model_card.md"} for v in V[:5])

    resources = build_resources()
    with dg.DagsterInstance.get() as instance:
        outcome = collect(
            artifacts_root=resources["artifacts"].root_uri,
            model_store=resources["model_store"],
            model_name=SETTINGS.model_name,
            instance=instance,
            keep_runs=3,
            keep_days=30,
            dry_run=False,
            now=datetime.now(UTC) + timedelta(days=31),
        )
    pruned = {v for v in V if bundle_files(data, v) == {"manifest.json"}}
    # V[0] superseded long ago and V[4] rejected: gone. V[1] (the rollback target), V[2] (champion), V[3] (proposed) stay.
    assert pruned == {V[0], V[4], V[5]}, outcome.lines
    # The runs that wrote the kept bundles keep their folders, beyond the three latest.
    kept = {p.name for p in (data / "artifacts" / "model_bundle" / DAY / "runs").iterdir()}
    assert {f"run-{v}" for v in V[1:4]} <= kept and {"x1", "x2", "x3"} <= kept
    assert f"run-{V[4]}" not in kept
    # The registry still reads every version and its history.
    assert all(v in models(capsys, "list") for v in V)


def test_the_weekly_schedule_runs_the_gc_job():
    schedule = next(s for s in build_schedules(Settings.from_env({})) if s.name == "gc_schedule")
    assert schedule.cron_schedule == GC_CRON and schedule.job_name == "gc_job"


@pytest.mark.slow
def test_the_gc_job_applies_the_policy(data):
    from recsys_assets.retention import gc_job

    folders = [run_folder(data, "items", run_id, OLD - timedelta(hours=i)) for i, run_id in enumerate("abcd")]
    with dg.instance_for_test() as instance:
        result = gc_job.execute_in_process(resources=build_resources(), instance=instance)
    assert result.success
    assert [f.exists() for f in folders] == [True, True, True, False]
