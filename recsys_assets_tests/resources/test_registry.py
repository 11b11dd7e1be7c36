"""The model registry on the local store and on S3: write-once events, derived champion and index, races."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from recsys_assets.domain.layout import ModelStoreKeys
from recsys_assets.domain.registry import TransitionError
from recsys_assets.resources.model_store import LocalModelStore, ModelStore
from recsys_assets.resources.registry import (
    ModelRegistry,
    UnknownVersionError,
    follow_base_pointer,
    poll_pull_requests,
    propose_release,
)
from recsys_assets.resources.release import LocalReleasePublisher
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.bundles import publish_version
from recsys_assets_tests.support.clients import make_store

POINTER = f"models/{SETTINGS.model_name}.json"
KEYS = ModelStoreKeys(SETTINGS.model_name)


def local(tmp_path: Path) -> tuple[ModelRegistry, LocalReleasePublisher]:
    store = LocalModelStore(root=str(tmp_path / "store"))
    return ModelRegistry(store, SETTINGS.model_name), LocalReleasePublisher(root=str(tmp_path / "store"))


def sync(registry: ModelRegistry, publisher: LocalReleasePublisher):
    proposed = [s for s in registry.statuses().values() if s.state == "proposed"]
    return poll_pull_requests(registry, publisher, proposed) + follow_base_pointer(registry, publisher, POINTER)


def state(registry: ModelRegistry, version: str) -> str | None:
    status = registry.status(version)
    return status.state if status else None


def test_proposal_leaves_the_champion_until_merged_and_closing_rejects(tmp_path):
    registry, publisher = local(tmp_path)
    publish_version(registry.store, "v1")
    first = propose_release(registry, publisher, "v1", POINTER, "run 1")
    assert first.created and state(registry, "v1") == "proposed"
    assert registry.store.read_champion(SETTINGS.model_name) is None and sync(registry, publisher) == []

    publisher.merge(first.identifier, POINTER)
    assert [(t.version, t.state) for t in sync(registry, publisher)] == [("v1", "released")]
    assert registry.store.read_champion(SETTINGS.model_name)["version"] == "v1"  # type: ignore[index]
    assert registry.store.read_champion(SETTINGS.model_name)["release"] == first.url  # type: ignore[index]

    publish_version(registry.store, "v2")
    second = propose_release(registry, publisher, "v2", POINTER, "run 2")
    assert "champion: `v1`" in Path(second.url).read_text()
    publisher.close(second.identifier)
    assert [(t.version, t.state) for t in sync(registry, publisher)] == [("v2", "rejected")]
    assert registry.champion().version == "v1"  # type: ignore[union-attr]
    with pytest.raises(TransitionError, match="v2 is rejected: it cannot become proposed"):
        propose_release(registry, publisher, "v2", POINTER, "promote")
    with pytest.raises(ValueError, match="already closed"):
        publisher.merge(second.identifier, POINTER)


def test_a_rerun_after_a_crash_finishes_the_same_proposal(tmp_path):
    registry, publisher = local(tmp_path)
    publish_version(registry.store, "v1")
    original = registry.record
    registry.record = lambda *a, **k: (_ for _ in ()).throw(OSError("crashed before recording"))  # type: ignore[method-assign]
    with pytest.raises(OSError):
        propose_release(registry, publisher, "v1", POINTER, "run 1")
    registry.record = original  # type: ignore[method-assign]

    again = propose_release(registry, publisher, "v1", POINTER, "run 1 retried")
    assert again.created is False and state(registry, "v1") == "proposed"
    assert propose_release(registry, publisher, "v1", POINTER, "run 1 once more").url == again.url
    assert registry.status("v1").proposals == 1  # type: ignore[union-attr]
    assert sorted(p.name for p in (tmp_path / "store/releases" / SETTINGS.model_name).iterdir()) == ["v1"]


def test_unknown_and_incomplete_versions_are_refused(tmp_path):
    registry, publisher = local(tmp_path)
    with pytest.raises(UnknownVersionError, match=r"no complete bundle .*/v9"):
        propose_release(registry, publisher, "v9", POINTER, "promote")
    registry.store.put_object(KEYS.bundle_file("v8", "model_card.md"), b"# upload died before the manifest")
    with pytest.raises(UnknownVersionError, match="upload never finished"):
        registry.record("v8", "proposed", "promote")
    assert registry.statuses() == {}


def test_revert_on_the_base_branch_rolls_back_and_rollback_proposes_the_previous_version(tmp_path):
    registry, publisher = local(tmp_path)
    for version in ("v1", "v2"):
        publish_version(registry.store, version)
        publisher.merge(propose_release(registry, publisher, version, POINTER, "run").identifier, POINTER)
        sync(registry, publisher)
    assert [state(registry, v) for v in ("v1", "v2")] == ["superseded", "released"]

    # Someone reverts the merge of v2: the base branch names v1 again.
    base = tmp_path / "store/serving-main" / POINTER
    base.write_text(json.dumps({"version": "v1"}))
    assert [(t.version, t.state) for t in sync(registry, publisher)] == [("v2", "rolled_back"), ("v1", "released")]
    assert registry.store.read_champion(SETTINGS.model_name)["version"] == "v1"  # type: ignore[index]

    # v2 can be proposed again (a fresh proposal next to the first), and merged back.
    again = propose_release(registry, publisher, "v2", POINTER, "promote")
    assert again.created and again.identifier.endswith("/v2-r2")
    publisher.merge(again.identifier, POINTER)
    sync(registry, publisher)
    assert [state(registry, v) for v in ("v1", "v2")] == ["superseded", "released"]

    # A revert to no pointer at all leaves no champion (and no pointer to compare with).
    base.unlink()
    sync(registry, publisher)
    assert registry.champion() is None and registry.store.read_champion(SETTINGS.model_name) is None


def test_a_merge_seen_on_the_base_branch_before_its_pull_request_is_not_a_revert(tmp_path):
    registry, publisher = local(tmp_path)
    for version in ("v1", "v2"):
        publish_version(registry.store, version)
    publisher.merge(propose_release(registry, publisher, "v1", POINTER, "run").identifier, POINTER)
    sync(registry, publisher)
    second = propose_release(registry, publisher, "v2", POINTER, "run")
    publisher.merge(second.identifier, POINTER)
    # The tick's bounded batch did not include v2's pull request: the base branch alone says it was
    # merged, so it is released and the champion superseded (never rolled back).
    assert [(t.version, t.state) for t in follow_base_pointer(registry, publisher, POINTER)] == [
        ("v2", "released"),
        ("v1", "superseded"),
    ]
    assert sync(registry, publisher) == []


def test_the_index_is_rebuilt_from_the_events(tmp_path):
    registry, publisher = local(tmp_path)
    publish_version(registry.store, "v1")
    propose_release(registry, publisher, "v1", POINTER, "run")
    written = registry.store.get_object(KEYS.registry_index)
    registry.store.delete_object(KEYS.registry_index)
    registry.write_index()
    assert registry.store.get_object(KEYS.registry_index) == written
    assert json.loads(written)["versions"]["v1"]["state"] == "proposed"  # type: ignore[arg-type]


def race(store: ModelStore) -> list[bool]:
    """Release and reject the same proposal at once from eight threads."""
    registry = ModelRegistry(store, SETTINGS.model_name)
    publish_version(store, "v1")
    registry.record("v1", "proposed", "run")
    results: list[bool] = []
    errors: list[Exception] = []
    barrier = threading.Barrier(8)

    def write(state: str) -> None:
        writer = ModelRegistry(store, SETTINGS.model_name)
        barrier.wait()
        try:
            results.append(writer.record("v1", state, "race"))  # type: ignore[arg-type]
        except TransitionError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=("released" if i % 2 else "rejected",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = registry.status("v1").history  # type: ignore[union-attr]
    assert [e.sequence for e in history] == [1, 2] and history[1].state in ("released", "rejected")
    assert results.count(True) == 1 and len(results) + len(errors) == 8
    return results


def test_racing_writers_on_the_local_store_leave_one_consistent_history(tmp_path):
    race(LocalModelStore(root=str(tmp_path)))


@pytest.mark.slow  # eight threads of signed S3 round trips: about 5 s here
def test_racing_writers_on_s3_leave_one_consistent_history(s3_standin, tmp_path):
    race(make_store(s3_standin, tmp_path))
