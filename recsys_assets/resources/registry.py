"""The model registry: each version's state history in the model store, and the release flow on top of it.

Every state change is one write-once object `models/<model>/<version>/events/<n>.json` (a
conditional put on S3, an atomic link locally): two writers racing for event `n` cannot both win,
and the loser re-reads and finds the state already reached or retries. `registry.json` (every
version's current state) and `champion.json` (the released version) are derived and rewritten from
the events, so a crash between writes is repaired by the next `sync`.

Used alike by `model_release` (propose), the `release_pull_requests` sensor (follow the pull
requests) and the `models` CLI (promote, rollback, reject), so every path leaves the same records.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from recsys_assets.domain.layout import BundleFile, ModelStoreKeys
from recsys_assets.domain.records import Manifest, VersionEvent, VersionState
from recsys_assets.domain.registry import (
    VersionStatus,
    champion_of,
    check_transition,
    fold,
    index,
)
from recsys_assets.domain.reports import pull_request_body
from recsys_assets.domain.storage import join
from recsys_assets.resources.model_store import ModelStore, sha256
from recsys_assets.resources.release import ReleaseProposal, ReleasePublisher, ReleaseResult
from recsys_assets.resources.tracking import MlflowTracker, tracker_from_env

# A writer that loses this many races in a row for the next event number gives up with an error.
MAX_RACE_RETRIES = 5


class UnknownVersionError(LookupError):
    """No complete bundle (no manifest) for this version."""


@dataclass(frozen=True)
class Transition:
    """A state change one call recorded."""

    version: str
    state: VersionState
    reason: str


class ModelRegistry:
    """States of one model's versions, kept as event records next to each bundle."""

    def __init__(self, store: ModelStore, model_name: str, tracker: MlflowTracker | None = None):
        self.store = store
        self.model_name = model_name
        self.keys = ModelStoreKeys(model_name)
        # MLflow mirrors the states and the champion when RECSYS_MLFLOW_TRACKING_URI is set.
        self.tracker = tracker or tracker_from_env()

    def manifest_bytes(self, version: str) -> bytes:
        """The version's manifest; refuses unknown and incomplete versions."""
        data = self.store.get_object(self.keys.manifest(version))
        if data is None:
            raise UnknownVersionError(
                f"no complete bundle {self.model_name}/{version} in {self.store.uri(self.keys.models_prefix)} "
                "(unknown version, or its upload never finished)"
            )
        return data

    def manifest(self, version: str) -> Manifest:
        return Manifest.from_json(self.manifest_bytes(version))

    def _events(self, keys: list[str]) -> list[VersionEvent]:
        found = []
        for key in keys:
            data = self.store.get_object(key)
            if data is not None:
                found.append(VersionEvent.from_json(data))
        return found

    def status(self, version: str) -> VersionStatus | None:
        return fold(version, self._events(self.store.list_keys(self.keys.events_prefix(version))))

    def statuses(self) -> dict[str, VersionStatus]:
        """Every version that has a state, from one listing of the model's keys."""
        by_version: dict[str, list[str]] = defaultdict(list)
        for key in self.store.list_keys(self.keys.models_prefix):
            version = self.keys.version_of_event_key(key)
            if version:
                by_version[version].append(key)
        folded = {version: fold(version, self._events(keys)) for version, keys in by_version.items()}
        return {version: status for version, status in folded.items() if status}

    def champion(self) -> VersionStatus | None:
        return champion_of(self.statuses())

    def record(
        self,
        version: str,
        state: VersionState,
        reason: str,
        pull_request: str | None = None,
        pull_request_id: str | None = None,
    ) -> bool:
        """Append `state` to the version's history; False when it is already in that state.

        Raises:
            UnknownVersionError: The version has no complete bundle.
            TransitionError: The rules do not allow the change (e.g. a rejected version proposed again).
        """
        self.manifest_bytes(version)
        for _ in range(MAX_RACE_RETRIES):
            status = self.status(version)
            current = status.state if status else None
            if current == state:
                return False
            check_transition(version, current, state)
            sequence = (status.last.sequence if status else 0) + 1
            event = VersionEvent(
                version=version,
                sequence=sequence,
                state=state,
                at=datetime.now(UTC).isoformat(),
                reason=reason,
                pull_request=pull_request,
                pull_request_id=pull_request_id,
            )
            if self.store.put_object_if_absent(self.keys.event(version, sequence), event.to_json()):
                self.write_index()
                if self.tracker:
                    self.tracker.record_state(self.model_name, version, state)
                return True
            # Another writer took this event number: re-read its state and decide again.
        raise RuntimeError(f"gave up recording {version} as {state} after {MAX_RACE_RETRIES} lost races")

    def release(self, version: str, reason: str) -> list[Transition]:
        """Record `version` as released, supersede the previous champion, and move the champion pointer."""
        statuses = self.statuses()
        status = statuses.get(version)
        done = []
        if self.record(version, "released", reason, status.pull_request if status else None):
            done.append(Transition(version, "released", reason))
        for other in statuses.values():
            if other.version != version and other.state == "released":
                why = f"replaced by {version}"
                if self.record(other.version, "superseded", why):
                    done.append(Transition(other.version, "superseded", why))
        self.write_champion_pointer()
        return done

    def write_index(self) -> None:
        self.store.put_object(self.keys.registry_index, json.dumps(index(self.statuses()), indent=2).encode())

    def write_champion_pointer(self) -> None:
        """Make `champion.json` name the released version (or remove it when none is), if it does not already."""
        champion = self.champion()
        if self.tracker:
            self.tracker.follow_champion(self.model_name, champion.version if champion else None)
        pointer = self.store.read_champion(self.model_name)
        if champion is None:
            if pointer is not None and self.status(pointer["version"]) is not None:
                self.store.clear_champion(self.model_name)
            # A pointer without any events predates the registry: left as it is.
            return
        if pointer is None or pointer["version"] != champion.version:
            self.store.write_champion(self.model_name, champion.version, release=champion.pull_request)


def propose_release(
    registry: ModelRegistry, publisher: ReleasePublisher, version: str, pointer_path: str, reason: str
) -> ReleaseResult:
    """Open the release pull request (or local proposal) for `version` and record it as proposed.

    Safe to repeat: a version already proposed gets its open pull request back, so a run that died
    between opening the pull request and recording it is finished, not proposed twice.

    Raises:
        UnknownVersionError: No complete bundle for the version.
        TransitionError: The version cannot be proposed (rejected, or already the champion).
    """
    name = registry.model_name
    manifest_bytes = registry.manifest_bytes(version)
    manifest = Manifest.from_json(manifest_bytes)
    status = registry.status(version)
    current = status.state if status else None
    proposals = status.proposals if status else 0
    if current == "proposed":
        attempt = proposals  # the open proposal: the publisher returns it
    else:
        check_transition(version, current, "proposed")
        attempt = proposals + 1
    champion_pointer = registry.store.read_champion(name)
    champion = registry.manifest(champion_pointer["version"]) if champion_pointer else None
    bundle_uri = registry.store.uri(registry.keys.bundle_prefix(version))
    pointer = {
        "model_name": name,
        "version": version,
        "uri": bundle_uri,
        # Serving verifies the bundle against this before loading it.
        "manifest_sha256": sha256(manifest_bytes),
        "metrics": manifest.metrics.model,
    }
    proposal = ReleaseProposal(
        model_name=name,
        version=version,
        pointer_path=pointer_path,
        pointer_content=json.dumps(pointer, indent=2) + "\n",
        title=f"Release {name} {version}" if attempt == 1 else f"Release {name} {version} again ({reason})",
        body=pull_request_body(manifest, champion, join(bundle_uri, BundleFile.MODEL_CARD)),
        attempt=attempt,
    )
    result = publisher.propose(proposal)
    registry.record(version, "proposed", reason, pull_request=result.url, pull_request_id=result.identifier)
    return result


def poll_pull_requests(
    registry: ModelRegistry, publisher: ReleasePublisher, proposed: list[VersionStatus]
) -> list[Transition]:
    """Follow the pull requests of `proposed` versions: merged -> released (champion), closed -> rejected."""
    done: list[Transition] = []
    for status in proposed:
        if status.pull_request_id is None:
            continue
        state = publisher.pull_request_state(status.pull_request_id)
        if state == "merged":
            done += registry.release(status.version, f"pull request {status.pull_request} merged")
        elif state == "closed":
            reason = f"pull request {status.pull_request} closed without merging"
            if registry.record(status.version, "rejected", reason):
                done.append(Transition(status.version, "rejected", reason))
    return done


def follow_base_pointer(registry: ModelRegistry, publisher: ReleasePublisher, pointer_path: str) -> list[Transition]:
    """Roll the champion back when the base branch's pointer no longer names it (a reverted merge).

    If the pointer names an earlier released version again, that version is the champion again;
    if it names nothing the registry knows, there is no champion until the next release.
    """
    champion = registry.champion()
    named = publisher.base_pointer_version(pointer_path)
    named_status = registry.status(named) if named else None
    done: list[Transition] = []
    if named_status is not None and named_status.state == "proposed":
        # Its merge reached the base branch before this tick saw the pull request (a later batch):
        # not a revert; polling its pull request will release it.
        return done
    if champion is not None and named != champion.version:
        reason = f"{pointer_path} on the base branch names {named or 'no version'} (reverted)"
        if registry.record(champion.version, "rolled_back", reason):
            done.append(Transition(champion.version, "rolled_back", reason))
        if named_status is not None and named_status.state in ("superseded", "rolled_back"):
            done += registry.release(named_status.version, f"{pointer_path} on the base branch names it again")
    registry.write_champion_pointer()
    return done
