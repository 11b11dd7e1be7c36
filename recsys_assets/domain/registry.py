"""Model version states and the rules between them, folded from each version's event records.

A version is `proposed` when its release pull request is open, `released` when it was merged (it
is then the champion), `rejected` when the pull request was closed unmerged, `superseded` when a
later release replaced it, and `rolled_back` when the serving repository stopped naming it
(a revert). A superseded or rolled-back version can be proposed again (promote, rollback); a
rejected one cannot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from recsys_assets.domain.records import VersionEvent, VersionState

TRANSITIONS: dict[VersionState | None, frozenset[VersionState]] = {
    None: frozenset({"proposed"}),
    "proposed": frozenset({"released", "rejected"}),
    "released": frozenset({"superseded", "rolled_back"}),
    # A revert that brings the base branch back to an earlier version re-releases it directly.
    "superseded": frozenset({"proposed", "released"}),
    "rolled_back": frozenset({"proposed", "released"}),
    "rejected": frozenset(),
}


class TransitionError(ValueError):
    """A state change the rules do not allow (e.g. promoting a rejected version)."""


def check_transition(version: str, current: VersionState | None, new: VersionState) -> None:
    """Raise TransitionError unless `current` -> `new` is allowed."""
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (final)"
        raise TransitionError(
            f"version {version} is {current or 'unrecorded'}: it cannot become {new} (allowed: {allowed})"
        )


@dataclass(frozen=True)
class VersionStatus:
    """A version's current state and the history it was folded from."""

    version: str
    history: tuple[VersionEvent, ...]

    @property
    def last(self) -> VersionEvent:
        return self.history[-1]

    @property
    def state(self) -> VersionState:
        return self.last.state

    @property
    def since(self) -> str:
        return self.last.at

    @property
    def pull_request(self) -> str | None:
        """The latest proposal's link (a later event may repeat it or carry none)."""
        return next((e.pull_request for e in reversed(self.history) if e.pull_request), None)

    @property
    def pull_request_id(self) -> str | None:
        return next((e.pull_request_id for e in reversed(self.history) if e.pull_request_id), None)

    @property
    def proposals(self) -> int:
        return sum(e.state == "proposed" for e in self.history)

    def last_time(self, state: VersionState) -> str:
        """When the version last entered `state` ('' if never)."""
        return max((e.at for e in self.history if e.state == state), default="")


def fold(version: str, events: Iterable[VersionEvent]) -> VersionStatus | None:
    """The status of one version from its events (in sequence order), or None without any."""
    history = tuple(sorted(events, key=lambda e: e.sequence))
    return VersionStatus(version, history) if history else None


def champion_of(statuses: Mapping[str, VersionStatus]) -> VersionStatus | None:
    """The released version (the latest released one, should a crash have left two)."""
    released = [s for s in statuses.values() if s.state == "released"]
    return max(released, key=lambda s: s.since, default=None)


def rollback_target(statuses: Mapping[str, VersionStatus]) -> VersionStatus | None:
    """The version the champion replaced: the most recently superseded (or rolled-back) one."""
    earlier = [s for s in statuses.values() if s.state in ("superseded", "rolled_back")]
    return max(earlier, key=lambda s: s.since, default=None)


def index(statuses: Mapping[str, VersionStatus]) -> dict[str, object]:
    """The registry index: every version's current state, and the champion; rebuildable from the events."""
    champion = champion_of(statuses)
    return {
        "champion": champion.version if champion else None,
        "versions": {
            version: {"state": s.state, "since": s.since, "pull_request": s.pull_request, "events": len(s.history)}
            for version, s in sorted(statuses.items())
        },
    }
