"""The registry repairs itself: crashes between a proposal or a merge and its record, corrupt files, a moved data folder.

Everything runs through the `models` CLI on the embedded default: the local release publisher (its
proposals and `serving-main` base branch under the model store) plays GitHub, as in production
the GitHub stand-in would; the crash points are the gaps between the publisher's write and the
registry's event, made by failing the second write exactly where a `kill -9` would stop it.
"""

import json
import shutil
from pathlib import Path

import dagster as dg
import pytest

from recsys_assets.cli import main
from recsys_assets.domain import storage
from recsys_assets.domain.layout import ModelStoreKeys
from recsys_assets.domain.records import BundleRef
from recsys_assets.partitions import daily_partitions
from recsys_assets.release.model_release import model_release
from recsys_assets.resources import build_resources
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import ModelStore
from recsys_assets.resources.registry import ModelRegistry, propose_release
from recsys_assets.resources.release import LocalReleasePublisher
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.bundles import publish_version
from recsys_assets_tests.support.environment import local_env

KEYS = ModelStoreKeys(SETTINGS.model_name)
POINTER = f"models/{SETTINGS.model_name}.json"


@pytest.fixture
def data(tmp_path, monkeypatch) -> Path:
    for name, value in local_env(tmp_path / "data").items():
        monkeypatch.setenv(name, value)
    return tmp_path / "data"


def models(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["models", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def registry() -> ModelRegistry:
    return ModelRegistry(build_resources()["model_store"], SETTINGS.model_name)


def states() -> dict[str, str]:
    return {version: status.state for version, status in registry().statuses().items()}


def champion_file(data: Path) -> str | None:
    path = data / "model_store" / KEYS.champion
    return json.loads(path.read_text())["version"] if path.exists() else None


def release(capsys, version: str) -> None:
    assert models(capsys, "promote", version)[0] == 0
    assert models(capsys, "merge", version)[0] == 0


@pytest.mark.slow
def test_a_run_that_died_after_opening_its_proposal_costs_no_champion(data, capsys):
    store = build_resources()["model_store"]
    for version in ("v1", "v2", "v3"):
        publish_version(store, version)
    release(capsys, "v1")

    # model_release of the run that built v2 is killed after the proposal opened, before its event.
    crashed = registry()
    crashed.record = lambda *a, **k: (_ for _ in ()).throw(SystemExit("kill -9"))  # type: ignore[method-assign]
    publisher: LocalReleasePublisher = build_resources()["release_publisher"]
    with pytest.raises(SystemExit):
        propose_release(crashed, publisher, "v2", POINTER, "run 2")
    # The rerun builds and proposes v3; the reviewer then merges the first, still open, proposal.
    assert models(capsys, "promote", "v3")[0] == 0
    assert states() == {"v1": "released", "v3": "proposed"}
    publisher.merge(str(data / "model_store" / KEYS.release_folder("v2")), POINTER)

    code, out, _ = models(capsys, "sync")
    assert code == 0
    assert "v2 -> released" in out and "v1 -> superseded: replaced by v2" in out
    assert "rolled_back" not in out
    assert states() == {"v1": "superseded", "v2": "released", "v3": "proposed"}
    assert champion_file(data) == "v2"


def test_an_open_proposal_whose_event_was_never_written_is_found_again(data, capsys):
    publish_version(build_resources()["model_store"], "v1")
    crashed = registry()
    crashed.record = lambda *a, **k: (_ for _ in ()).throw(SystemExit("kill -9"))  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        propose_release(crashed, build_resources()["release_publisher"], "v1", POINTER, "run 1")
    assert states() == {}

    code, out, _ = models(capsys, "sync")
    assert code == 0 and "v1 -> proposed: its release proposal was open but never recorded" in out
    assert models(capsys, "merge", "v1")[0] == 0
    assert states() == {"v1": "released"} and champion_file(data) == "v1"


@pytest.mark.slow
def test_a_merge_whose_pointer_reached_the_base_branch_but_not_the_registry(data, capsys):
    store = build_resources()["model_store"]
    for version in ("v1", "v2"):
        publish_version(store, version)
    release(capsys, "v1")
    assert models(capsys, "promote", "v2")[0] == 0
    # A base branch that names v2 with no proposal recorded merged: what an unrecorded merge leaves
    # (a crash of `models merge` after the pointer, or a pull request merged while nobody polled).
    proposal = data / "model_store" / KEYS.release_folder("v2") / POINTER
    base = data / "model_store" / "serving-main" / POINTER
    base.write_bytes(proposal.read_bytes())

    code, out, _ = models(capsys, "sync")
    assert code == 0 and "v2 -> released" in out and "v1 -> superseded" in out
    assert states() == {"v1": "superseded", "v2": "released"} and champion_file(data) == "v2"


def test_a_crash_inside_models_merge_is_finished_by_sync(data, capsys, monkeypatch):
    publish_version(build_resources()["model_store"], "v1")
    assert models(capsys, "promote", "v1")[0] == 0

    def killed(self, identifier, state):
        raise SystemExit("kill -9 after the base branch was written")

    monkeypatch.setattr(LocalReleasePublisher, "_finish", killed)
    with pytest.raises(SystemExit):
        main(["models", "merge", "v1"])
    monkeypatch.undo()
    for name, value in local_env(data).items():
        monkeypatch.setenv(name, value)

    code, out, _ = models(capsys, "sync")
    assert code == 0 and "v1 -> released" in out
    assert states() == {"v1": "released"} and champion_file(data) == "v1"


def test_corrupt_records_are_quarantined_and_named_and_the_rest_stays_usable(data, capsys):
    store = build_resources()["model_store"]
    for version in ("v1", "v2", "v3"):
        publish_version(store, version)
    release(capsys, "v1")
    assert models(capsys, "promote", "v2")[0] == 0
    root = data / "model_store"
    (root / KEYS.champion).write_text("garbage, not JSON")
    released_event = root / KEYS.event("v1", 2)
    released_event.write_text('{"version": "v1", "sequence": 2, "sta')  # cut off mid-write
    manifest = root / KEYS.manifest("v3")
    manifest.write_bytes(manifest.read_bytes()[:40])  # a truncated copy

    code, out, err = models(capsys, "list")
    assert code == 0
    rows = {
        line.split("|")[1].strip(): line
        for line in out.splitlines()
        if line.startswith("| v") and "| state |" not in line
    }
    assert set(rows) == {"v1", "v2", "v3"} and "| proposed |" in rows["v2"]
    assert "| proposed |" in rows["v1"]  # its released event is unreadable: the earlier one stands
    assert "unreadable manifest" in rows["v3"]
    for path, version in ((released_event, "v1"), (manifest, "v3")):
        assert f"unreadable {path} (version {version})" in err and "quarantined to" in err
    quarantine = root / KEYS.quarantine_prefix
    assert sorted(p.name for p in quarantine.rglob("*") if p.is_file()) == ["000002.json", "manifest.json"]

    # sync finds v1's merged proposal again (its released event was lost) and rewrites champion.json.
    code, out, err = models(capsys, "sync")
    assert code == 0 and "v1 -> released" in out
    assert f"unreadable {root / KEYS.champion}" in err
    assert champion_file(data) == "v1" and states() == {"v1": "released", "v2": "proposed"}
    assert models(capsys, "show", "v3")[2].strip().endswith("(unknown version, or its upload never finished)")


@dg.asset(partitions_def=daily_partitions, name="model_bundle")
def written_bundle(context: dg.AssetExecutionContext, artifacts: ArtifactStore, model_store: ModelStore) -> None:
    """Stands in for the bundle step: a complete bundle in the store and this run's reference to it."""
    uri = publish_version(model_store, "v2", partition=context.partition_key)
    ref = artifacts.layout(context.run).model_bundle(context.partition_key).ref
    storage.write_bytes(ref, BundleRef(version="v2", uri=uri).to_json())


@pytest.mark.slow  # a materialization
def test_a_run_treats_an_unreadable_champion_as_no_comparison_possible(data, capsys):
    publish_version(build_resources()["model_store"], "v1")
    release(capsys, "v1")
    root = data / "model_store"
    (root / KEYS.champion).write_text("\x00\x01 not a pointer")
    (root / KEYS.manifest("v1")).write_text("{")

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [written_bundle, model_release],
            partition_key="2026-02-28",
            resources=build_resources(),
            instance=instance,
            raise_on_error=False,
        )
        assert result.success
        retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        assert retries == []
        metadata = result.asset_materializations_for_node("model_release")[0].metadata
    assert metadata["state"].value == "proposed" and metadata["champion"].value == "v1"
    assert any(f"{root / KEYS.manifest('v1')} (version v1)" in line for line in metadata["unreadable_records"].value)
    body = (root / KEYS.release_folder("v2") / "PULL_REQUEST.md").read_text()
    assert "Release" in body


def test_moving_the_data_folder_keeps_pending_proposals_reachable(data, tmp_path, capsys, monkeypatch):
    store = build_resources()["model_store"]
    for version in ("v1", "v2"):
        publish_version(store, version)
    assert models(capsys, "promote", "v1")[0] == 0
    assert models(capsys, "promote", "v2")[0] == 0

    moved = tmp_path / "elsewhere"
    shutil.move(str(data), str(moved))
    for name, value in local_env(moved).items():
        monkeypatch.setenv(name, value)

    assert models(capsys, "reject", "v2")[0] == 0
    code, out, _ = models(capsys, "merge", "v1")
    assert code == 0 and "v1 -> released" in out
    assert states() == {"v1": "released", "v2": "rejected"} and champion_file(moved) == "v1"
