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
from typing import Any

from recsys_assets.domain.layout import BundleFile, ModelStoreKeys
from recsys_assets.domain.names import is_safe_name, safe_name
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
from recsys_assets.resources.tracking import ExperimentTracker

# A writer that loses this many races in a row for the next event number gives up with an error.
MAX_RACE_RETRIES = 5


class UnknownVersionError(LookupError):
    """No complete bundle (no manifest) for this version."""


class UnreadableRecordError(UnknownVersionError):
    """A stored record (manifest, event, pointer) cannot be read; the message names its path and version."""


@dataclass(frozen=True)
class Transition:
    """A state change one call recorded."""

    version: str
    state: VersionState
    reason: str


@dataclass(frozen=True)
class Quarantined:
    """A stored record that could not be read: where it was, its version, why, and where it went.

    `moved_to` is None when the record was only skipped: it is JSON this code cannot interpret (a
    newer writer's, perhaps), so it stays where it is and is named on every read instead.
    """

    uri: str
    version: str | None
    reason: str
    moved_to: str | None = None

    def line(self) -> str:
        version = f" (version {self.version})" if self.version else ""
        action = f"quarantined to {self.moved_to}" if self.moved_to else "skipped, left in place"
        return f"unreadable {self.uri}{version}: {self.reason}; {action}"


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def _first_error(exc: Exception) -> str:
    return " ".join(str(exc).split())[:300]


class ModelRegistry:
    """States of one model's versions, kept as event records next to each bundle.

    Reads never stop at one bad file: a record whose bytes are not a JSON object (truncated,
    overwritten with garbage) is moved under `models/<model>/.quarantine/` and named in
    `quarantined`; a JSON record this code cannot interpret is skipped and named. The rest of the
    registry stays usable, and `models sync` rewrites what is derived (champion.json, registry.json).
    """

    def __init__(self, store: ModelStore, model_name: str, tracker: ExperimentTracker | None = None):
        self.store = store
        self.model_name = model_name
        self.keys = ModelStoreKeys(model_name)
        # The `tracker` resource (MLflow when RECSYS_MLFLOW_TRACKING_URI is set) mirrors states and the champion.
        self.tracker = tracker
        self.quarantined: list[Quarantined] = []

    def _note(self, key: str, version: str | None, reason: str, data: bytes | None = None) -> None:
        """Name an unreadable record; with its bytes, move it to the quarantine first."""
        moved_to = None
        if data is not None:
            target = self.keys.quarantined(key, datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ"))
            self.store.put_object(target, data)
            self.store.delete_object(key)
            moved_to = self.store.uri(target)
        note = Quarantined(self.store.uri(key), version, reason, moved_to)
        if note not in self.quarantined:
            self.quarantined.append(note)

    def manifest_bytes(self, version: str) -> bytes:
        """The version's manifest; refuses unknown and incomplete versions (and names that are not versions)."""
        safe_name(version, "version")
        data = self.store.get_object(self.keys.manifest(version))
        if data is None:
            raise UnknownVersionError(
                f"no complete bundle {self.model_name}/{version} in {self.store.uri(self.keys.models_prefix)} "
                "(unknown version, or its upload never finished)"
            )
        return data

    def manifest(self, version: str) -> Manifest:
        """The version's manifest, read and validated.

        Raises:
            UnknownVersionError: No complete bundle.
            UnreadableRecordError: The manifest is not a JSON object (then quarantined: the version
                becomes incomplete) or not a manifest this code can read (left in place).
        """
        key = self.keys.manifest(version)
        data = self.manifest_bytes(version)
        raw = _json_object(data)
        if raw is None:
            self._note(key, version, "not a JSON object (truncated or overwritten)", data)
            raise UnreadableRecordError(self.quarantined[-1].line())
        try:
            return Manifest.from_dict(raw)
        except ValueError as exc:
            self._note(key, version, f"not a manifest this code can read ({_first_error(exc)})")
            raise UnreadableRecordError(self.quarantined[-1].line()) from None

    def readable_manifest(self, version: str) -> Manifest | None:
        """The version's manifest, or None (named in `quarantined`) when it is missing or unreadable."""
        try:
            return self.manifest(version)
        except UnreadableRecordError:
            return None
        except UnknownVersionError as exc:
            self._note(self.keys.manifest(version), version, str(exc))
            return None

    def _event(self, key: str) -> VersionEvent | None:
        data = self.store.get_object(key)
        if data is None:
            return None  # gone since the listing (quarantined by another reader)
        version, sequence = self.keys.version_of_event_key(key), self.keys.sequence_of_event_key(key)
        raw = _json_object(data)
        if raw is None:
            self._note(key, version, "not a JSON object (truncated or overwritten)", data)
            return None
        try:
            # Fields a newer writer added are ignored rather than taken for corruption.
            event = VersionEvent.model_validate({k: v for k, v in raw.items() if k in VersionEvent.model_fields})
        except ValueError as exc:
            self._note(key, version, f"not a state event this code can read ({_first_error(exc)})")
            return None
        if event.version != version or event.sequence != sequence:
            self._note(key, version, f"records version {event.version!r} event {event.sequence}, not its own key")
            return None
        return event

    def _events(self, keys: list[str]) -> list[VersionEvent]:
        return [event for event in (self._event(key) for key in keys) if event is not None]

    def status(self, version: str) -> VersionStatus | None:
        safe_name(version, "version")
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

    def champion_pointer(self) -> dict[str, Any] | None:
        """`champion.json` as stored, or None when absent or unreadable (then quarantined and named)."""
        key = self.keys.champion
        data = self.store.get_object(key)
        if data is None:
            return None
        raw = _json_object(data)
        version = raw.get("version") if raw else None
        if not isinstance(version, str) or not is_safe_name(version):
            self._note(key, None, "not a champion pointer (a JSON object naming a version)", data)
            return None
        return raw

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
            keys = self.store.list_keys(self.keys.events_prefix(version))
            status = fold(version, self._events(keys))
            current = status.state if status else None
            if current == state:
                return False
            check_transition(version, current, state)
            # After every key, readable or not: an unreadable event still holds its number.
            taken = [n for n in (self.keys.sequence_of_event_key(key) for key in keys) if n is not None]
            sequence = max([*taken, status.last.sequence if status else 0]) + 1
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
        """Record `version` as released, supersede every other released version, and move the champion pointer."""
        status = self.status(version)
        done = []
        if self.record(version, "released", reason, status.pull_request if status else None):
            done.append(Transition(version, "released", reason))
        # Every other released version, not only the champion of a moment ago: a crash inside an
        # earlier release may have left two.
        for other in self.statuses().values():
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
        pointer = self.champion_pointer()
        if champion is None:
            if pointer is not None and self.status(pointer["version"]) is not None:
                self.store.clear_champion(self.model_name)
            # A pointer without any events predates the registry: left as it is.
            return
        if pointer is None or pointer["version"] != champion.version:
            self.store.write_champion(self.model_name, champion.version, release=champion.pull_request)

    def champion_version(self) -> str | None:
        """The released version, or (for a store older than the registry) the one champion.json names."""
        champion = self.champion()
        if champion is not None:
            return champion.version
        pointer = self.champion_pointer()
        return pointer["version"] if pointer else None


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
    # An unreadable champion is "no comparison possible" in the pull request, not a failed release.
    champion_version = registry.champion_version()
    champion = registry.readable_manifest(champion_version) if champion_version else None
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


def record_open_proposals(registry: ModelRegistry, publisher: ReleasePublisher) -> list[Transition]:
    """Record as proposed every open proposal whose version has a bundle but no state.

    A run that died between opening its pull request and recording it leaves exactly this; its
    rerun releases a new version, so the open one would otherwise never be followed.
    """
    statuses = registry.statuses()
    done: list[Transition] = []
    for proposal in publisher.open_proposals(registry.model_name):
        if proposal.version in statuses or not is_safe_name(proposal.version):
            continue
        if registry.readable_manifest(proposal.version) is None:
            continue
        reason = "its release proposal was open but never recorded (found again by sync)"
        if registry.record(proposal.version, "proposed", reason, proposal.url, proposal.identifier):
            done.append(Transition(proposal.version, "proposed", reason))
    return done


def follow_base_pointer(registry: ModelRegistry, publisher: ReleasePublisher, pointer_path: str) -> list[Transition]:
    """Make the registry agree with the version the base branch's pointer names: what was merged.

    - a proposed version (its merge reached the base branch before its pull request was polled, or
      `models merge` died before recording it), a version the registry never heard of but whose bundle
      is complete (a proposal opened but never recorded, then merged), or a second released version:
      it is released, and the champion is superseded, never rolled back;
    - an earlier version (superseded or rolled back): a revert; the champion is rolled back and that
      version is the champion again;
    - no pointer file, or a version without a bundle: the champion is rolled back, and there is no
      champion until the next release;
    - an unreadable pointer file: nothing changes, and the file is named in `registry.quarantined`.
    """
    try:
        named = publisher.base_pointer_version(pointer_path)
    except ValueError as exc:
        registry.quarantined.append(Quarantined(pointer_path, None, f"{exc}: the champion is left as it is"))
        registry.write_champion_pointer()
        return []
    statuses = registry.statuses()
    champion = champion_of(statuses)
    named_status = statuses.get(named) if named else None
    done: list[Transition] = []
    merged = named is not None and (
        (named_status is None and is_safe_name(named) and registry.readable_manifest(named) is not None)
        or (named_status is not None and named_status.state in ("proposed", "released"))
    )
    if merged:
        assert named is not None
        if named_status is None:
            reason = f"{pointer_path} on the base branch names it: merged, though its proposal was never recorded"
            registry.record(named, "proposed", reason)
            done.append(Transition(named, "proposed", reason))
        done += registry.release(named, f"{pointer_path} on the base branch names it")
    elif champion is not None and named != champion.version:
        reason = f"{pointer_path} on the base branch names {named or 'no version'} (reverted)"
        if registry.record(champion.version, "rolled_back", reason):
            done.append(Transition(champion.version, "rolled_back", reason))
        if named_status is not None and named_status.state in ("superseded", "rolled_back"):
            done += registry.release(named_status.version, f"{pointer_path} on the base branch names it again")
    registry.write_champion_pointer()
    return done


def sync_registry(
    registry: ModelRegistry,
    publisher: ReleasePublisher,
    pointer_path: str,
    proposed: list[VersionStatus] | None = None,
) -> list[Transition]:
    """What `models sync` and the release sensor do: find unrecorded proposals, poll the open ones
    (`proposed`, default all), and follow the base branch's pointer."""
    done = record_open_proposals(registry, publisher)
    if proposed is None:
        proposed = [s for s in registry.statuses().values() if s.state == "proposed"]
    done += poll_pull_requests(registry, publisher, proposed)
    return done + follow_base_pointer(registry, publisher, pointer_path)
