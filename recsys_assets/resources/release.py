"""Release publishing: proposing a model promotion, and its local (no network) implementation."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field

from recsys_assets.domain.layout import (
    LOCAL_BASE_BRANCH,
    PULL_REQUEST_BODY,
    PULL_REQUEST_STATE,
    ModelStoreKeys,
    release_name,
)

PullRequestState = Literal["open", "merged", "closed"]


@dataclass(frozen=True)
class ReleaseProposal:
    """A request to promote one model version: the pointer file to commit and the PR text."""

    model_name: str
    version: str
    pointer_path: str
    pointer_content: str
    title: str
    body: str
    attempt: int = 1  # >1 when the version is proposed again (promote, rollback): a fresh branch

    @property
    def branch(self) -> str:
        return f"release/{self.model_name}/{release_name(self.version, self.attempt)}"


@dataclass(frozen=True)
class ReleaseResult:
    """Where the proposal landed; `created` is False when it already existed."""

    url: str
    identifier: str
    created: bool


class ReleasePublisher(dg.ConfigurableResource, ABC):
    """Turns a release proposal into a reviewable change (a pull request, or local files)."""

    def secret_references(self) -> list[str]:
        """The secrets (name@version, never values) this publisher's credentials came from."""
        return []

    @abstractmethod
    def propose(self, proposal: ReleaseProposal) -> ReleaseResult:
        """Publish the proposal once; publishing the same version again returns the existing one."""

    @abstractmethod
    def pull_request_state(self, identifier: str) -> PullRequestState:
        """Whether the proposal `identifier` (a ReleaseResult's) is still open, was merged, or closed unmerged."""

    @abstractmethod
    def close(self, identifier: str) -> None:
        """Close an open proposal without merging it."""

    @abstractmethod
    def base_pointer_version(self, pointer_path: str) -> str | None:
        """The version the base branch's pointer file names now (None when there is no pointer file)."""


class LocalReleasePublisher(ReleasePublisher):
    """Writes the pointer file and pull-request body under a local folder instead of opening a PR."""

    root: str = Field(description="Folder that receives releases/<model_name>/<version>/.")

    def propose(self, proposal: ReleaseProposal) -> ReleaseResult:
        keys = ModelStoreKeys(proposal.model_name)
        folder = Path(self.root) / keys.release_folder(proposal.version, proposal.attempt)
        body_path = folder / PULL_REQUEST_BODY
        if body_path.exists():
            return ReleaseResult(url=str(body_path), identifier=str(folder), created=False)
        pointer = folder / proposal.pointer_path
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(proposal.pointer_content)
        # The body is written last: its presence marks a complete proposal.
        body_path.write_text(f"# {proposal.title}\n\n{proposal.body}\n")
        return ReleaseResult(url=str(body_path), identifier=str(folder), created=True)

    def _folder(self, identifier: str) -> Path:
        # Identifiers are the folders this publisher returned; anything else is refused, never followed.
        folder = Path(identifier).resolve()
        releases = (Path(self.root) / "releases").resolve()
        if releases not in folder.parents or not (folder / PULL_REQUEST_BODY).is_file():
            raise ValueError(f"no local release proposal at {identifier}")
        return folder

    def pull_request_state(self, identifier: str) -> PullRequestState:
        state_file = self._folder(identifier) / PULL_REQUEST_STATE
        if not state_file.exists():
            return "open"
        state = state_file.read_text().strip()
        if state not in ("merged", "closed"):
            raise ValueError(f"{state_file} holds {state!r}, not merged or closed")
        return state  # type: ignore[return-value]

    def _finish(self, identifier: str, state: PullRequestState) -> Path:
        folder = self._folder(identifier)
        current = self.pull_request_state(identifier)
        if current != "open":
            raise ValueError(f"the release proposal {identifier} is already {current}")
        (folder / PULL_REQUEST_STATE).write_text(state + "\n")
        return folder

    def close(self, identifier: str) -> None:
        self._finish(identifier, "closed")

    def merge(self, identifier: str, pointer_path: str) -> None:
        """The local stand-in for merging the pull request: its pointer file becomes the base branch's."""
        folder = self._folder(identifier)
        content = (folder / pointer_path).read_bytes()
        base = Path(self.root) / LOCAL_BASE_BRANCH / pointer_path
        base.parent.mkdir(parents=True, exist_ok=True)
        base.write_bytes(content)
        self._finish(identifier, "merged")

    def base_pointer_version(self, pointer_path: str) -> str | None:
        base = Path(self.root) / LOCAL_BASE_BRANCH / pointer_path
        return pointer_version(base.read_bytes(), str(base)) if base.is_file() else None


def pointer_version(content: bytes, where: str) -> str:
    """The version a serving pointer file names."""
    try:
        version = json.loads(content)["version"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{where} is not a pointer file (a JSON object with a version)") from None
    if not isinstance(version, str) or not version:
        raise ValueError(f"{where} names no version")
    return version
