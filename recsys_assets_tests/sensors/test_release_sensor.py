"""The release_pull_requests sensor against the local GitHub stand-in: merges, closes, reverts, outages, races."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import dagster as dg
import pytest

from recsys_assets.domain.registry import TransitionError, fold
from recsys_assets.resources.github import GitHubReleasePublisher
from recsys_assets.resources.model_store import LocalModelStore
from recsys_assets.resources.registry import ModelRegistry, propose_release
from recsys_assets.resources.tracking import NoExperimentTracker
from recsys_assets.sensors.releases import build_release_pull_requests, next_batch, parse_cursor
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.bundles import publish_version
from recsys_assets_tests.support.clients import publisher, secrets_with_token
from recsys_assets_tests.support.records import event
from recsys_assets_tests.support.standins.github import GitHubStandIn

release_pull_requests = build_release_pull_requests(SETTINGS)
POINTER = f"models/{SETTINGS.model_name}.json"


class Release:
    """A local model store and the GitHub publisher, and ticks of the sensor over them."""

    def __init__(self, tmp_path: Path, github: GitHubStandIn) -> None:
        self.store = LocalModelStore(root=str(tmp_path / "store"))
        self.registry = ModelRegistry(self.store, SETTINGS.model_name)
        self.github, self.cursor = github, None
        self.publisher = publisher(github, tmp_path)

    def propose(self, version: str, reason: str = "run") -> str:
        if self.store.read_manifest(SETTINGS.model_name, version) is None:
            publish_version(self.store, version)
        return propose_release(self.registry, self.publisher, version, POINTER, reason).url

    def tick(self, release_publisher: GitHubReleasePublisher | None = None) -> dg.SensorResult:
        resources = {
            "model_store": self.store,
            "release_publisher": release_publisher or self.publisher,
            "tracker": NoExperimentTracker(),
        }
        with dg.build_sensor_context(cursor=self.cursor, resources=resources) as context:
            data = release_pull_requests.evaluate_tick(context)
        self.cursor = data.cursor
        return data

    def changes(self) -> list[tuple[str, str]]:
        data = self.tick()
        return [(e.metadata["version"].value, e.metadata["state"].value) for e in data.asset_events]  # type: ignore[union-attr]

    def state(self, version: str) -> str:
        return self.registry.status(version).state  # type: ignore[union-attr]

    def champion(self) -> str | None:
        pointer = self.store.read_champion(SETTINGS.model_name)
        return pointer["version"] if pointer else None


@pytest.fixture
def release(tmp_path, github_standin) -> Release:
    return Release(tmp_path, github_standin)


@pytest.mark.slow  # about 70 GitHub round trips; the same rules run fast on the local publisher in test_registry
def test_merge_releases_close_rejects_revert_rolls_back(release):
    first = release.propose("v1")
    assert release.state("v1") == "proposed" and release.champion() is None
    assert release.tick().skip_message == "no change among 1 open release proposals"

    release.github.merge(first)
    assert release.changes() == [("v1", "released")]
    assert release.champion() == "v1" and release.store.read_champion(SETTINGS.model_name)["release"] == first  # type: ignore[index]

    second = release.propose("v2")
    release.github.close(second)
    assert release.changes() == [("v2", "rejected")] and release.champion() == "v1"
    with pytest.raises(TransitionError, match="v2 is rejected"):
        release.propose("v2", "promote")

    release.github.merge(release.propose("v3"))
    assert release.changes() == [("v3", "released"), ("v1", "superseded")] and release.champion() == "v3"

    # Someone reverts the merge on main: the pointer names v1 again.
    main_pointer = json.loads(release.github.files["main"][POINTER])
    release.github.commit("main", POINTER, json.dumps({**main_pointer, "version": "v1"}))
    assert release.changes() == [("v3", "rolled_back"), ("v1", "released")] and release.champion() == "v1"

    # Rolling forward again is a new pull request on a fresh branch, merged like any other.
    forward = release.propose("v3", "promote")
    assert release.github.pull(forward)["head"]["ref"] == f"release/{SETTINGS.model_name}/v3-r2"
    release.github.merge(forward)
    assert release.changes() == [("v3", "released"), ("v1", "superseded")] and release.champion() == "v3"
    assert release.tick().skip_message is not None  # nothing left to do: the ticks are idempotent


def test_the_observation_lands_on_model_release_for_the_bundles_partition(release):
    release.github.merge(release.propose("v1"))
    [observation] = release.tick().asset_events
    assert isinstance(observation, dg.AssetObservation)
    assert observation.asset_key == dg.AssetKey("model_release") and observation.partition == "2026-02-28"


@pytest.mark.parametrize(
    ("override", "status", "message"),
    [
        ("GET /pulls/1", 502, "HTTP 502"),
        ("GET /pulls/1", 404, "HTTP 404"),
        ("GET /contents/" + POINTER, 500, "HTTP 500"),
    ],
)
@pytest.mark.slow
def test_github_failures_fail_the_tick_and_change_nothing(release, override, status, message):
    release.propose("v1")
    release.tick()
    cursor = release.cursor
    release.github.merge(1)
    release.github.override(override, status, {"message": "Server Error" if status >= 500 else "Not Found"})
    with pytest.raises(Exception, match=message):
        release.tick()
    assert release.cursor == cursor
    if override.endswith("/pulls/1"):
        assert release.state("v1") == "proposed" and release.champion() is None
    assert release.changes() == ([("v1", "released")] if override.endswith("/pulls/1") else [])


def test_a_rejected_token_fails_the_tick_without_showing_it(release, tmp_path):
    release.propose("v1")
    wrong = "ghp_wrong_token_value_0000"
    bad = publisher(release.github, tmp_path, secrets=secrets_with_token(tmp_path / "wrong", wrong))
    with pytest.raises(Exception, match="HTTP 401") as caught:
        release.tick(bad)
    assert wrong not in str(caught.value) and release.state("v1") == "proposed"


@pytest.mark.slow
def test_racing_ticks_record_the_merge_once(release):
    release.github.merge(release.propose("v1"))
    barrier = threading.Barrier(4)
    results: list[dg.SensorResult] = []

    def tick() -> None:
        barrier.wait()
        resources = {
            "model_store": release.store,
            "release_publisher": release.publisher,
            "tracker": NoExperimentTracker(),
        }
        with dg.build_sensor_context(resources=resources) as context:
            results.append(release_pull_requests.evaluate_tick(context))

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert [e.state for e in release.registry.status("v1").history] == ["proposed", "released"]  # type: ignore[union-attr]
    assert release.champion() == "v1"


def test_each_tick_polls_a_bounded_batch_in_turn():
    proposed = [fold(f"v{i:02d}", [event(f"v{i:02d}", 1, "proposed", "t")]) for i in range(5)]
    statuses = [s for s in proposed if s]
    assert [s.version for s in next_batch(statuses, None, limit=2)] == ["v00", "v01"]
    assert [s.version for s in next_batch(statuses, "v01", limit=2)] == ["v02", "v03"]
    assert [s.version for s in next_batch(statuses, "v03", limit=2)] == ["v04", "v00"]
    assert parse_cursor(None) is None and parse_cursor('{"after": "v01"}') == "v01"
    with pytest.raises(ValueError):
        parse_cursor("[1]")


@pytest.mark.slow  # GitHub round trips
def test_a_pull_request_opened_but_never_recorded_is_found_and_its_merge_supersedes(release):
    """GitHub stand-in: a run died between `create_pull` and its `proposed` event; the reviewer merges it."""
    release.github.merge(release.propose("v1"))
    assert release.changes() == [("v1", "released")]
    publish_version(release.store, "v2")
    crashed = ModelRegistry(release.store, SETTINGS.model_name)
    crashed.record = lambda *a, **k: (_ for _ in ()).throw(SystemExit("kill -9"))  # type: ignore[method-assign]
    with pytest.raises(SystemExit):
        propose_release(crashed, release.publisher, "v2", POINTER, "run 2")
    (opened,) = release.github.open_pulls()

    assert release.changes() == [("v2", "proposed")]  # found by listing the open release pull requests
    assert release.registry.status("v2").pull_request == opened["html_url"]  # type: ignore[union-attr]
    release.github.merge(opened["number"])
    assert release.changes() == [("v2", "released"), ("v1", "superseded")] and release.champion() == "v2"
