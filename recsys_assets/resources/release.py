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
from recsys_assets.domain.names import safe_name

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


@dataclass(frozen=True)
class OpenProposal:
    """A release proposal the publisher holds open for `version`, whatever the registry recorded."""

    version: str
    url: str
    identifier: str


def proposal_version(release: str) -> tuple[str, int]:
    """The version and attempt a release branch or folder name (`release_name`) stands for."""
    version, _, attempt = release.rpartition("-r")
    return (version, int(attempt)) if version and attempt.isdigit() else (release, 1)


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

    @abstractmethod
    def open_proposals(self, model_name: str) -> list[OpenProposal]:
        """Every release proposal of `model_name` still open, so one whose recording was lost is found again."""


class LocalReleasePublisher(ReleasePublisher):
    """Writes the pointer file and pull-request body under a local folder instead of opening a PR."""

    root: str = Field(description="Folder that receives releases/<model_name>/<version>/.")

    def propose(self, proposal: ReleaseProposal) -> ReleaseResult:
        keys = ModelStoreKeys(proposal.model_name)
        # The identifier is relative to the root, so moving the data folder keeps every proposal
        # reachable; the URL is where the body is now, for a person to open.
        identifier = keys.release_folder(proposal.version, proposal.attempt)
        folder = Path(self.root) / identifier
        body_path = folder / PULL_REQUEST_BODY
        if body_path.exists():
            return ReleaseResult(url=str(body_path), identifier=identifier, created=False)
        pointer = folder / proposal.pointer_path
        pointer.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(pointer, proposal.pointer_content)
        # The body is written last: its presence marks a complete proposal.
        write_text_atomically(body_path, f"# {proposal.title}\n\n{proposal.body}\n")
        return ReleaseResult(url=str(body_path), identifier=identifier, created=True)

    def _folder(self, identifier: str) -> Path:
        """The proposal folder an identifier names, under this root; anything else is refused, never followed.

        Identifiers are `releases/<model>/<name>`, relative to the root. Proposals recorded before
        that hold the absolute folder of the time: their `releases/...` tail is looked up under the
        current root, so they survive a move of the data folder too.
        """
        parts = Path(identifier).parts
        if "releases" in parts:
            parts = parts[len(parts) - 1 - parts[::-1].index("releases") :]
        relative = Path(*parts) if parts else Path()
        if len(relative.parts) != 3 or relative.parts[0] != "releases" or ".." in relative.parts:
            raise ValueError(f"no local release proposal at {identifier}")
        safe_name(relative.parts[1], "model name")
        safe_name(relative.parts[2], "release name")
        folder = Path(self.root) / relative
        if not (folder / PULL_REQUEST_BODY).is_file():
            raise ValueError(f"no local release proposal at {identifier} (looked in {folder})")
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
        write_text_atomically(folder / PULL_REQUEST_STATE, state + "\n")
        return folder

    def close(self, identifier: str) -> None:
        self._finish(identifier, "closed")

    def merge(self, identifier: str, pointer_path: str) -> None:
        """The local stand-in for merging the pull request: its pointer file becomes the base branch's."""
        folder = self._folder(identifier)
        content = (folder / pointer_path).read_bytes()
        base = Path(self.root) / LOCAL_BASE_BRANCH / pointer_path
        base.parent.mkdir(parents=True, exist_ok=True)
        # The base branch first, as on GitHub: a crash before STATE leaves a merge that `sync` finds
        # from the base branch, never a "merged" proposal the base branch does not name.
        write_text_atomically(base, content.decode())
        self._finish(identifier, "merged")

    def base_pointer_version(self, pointer_path: str) -> str | None:
        base = Path(self.root) / LOCAL_BASE_BRANCH / pointer_path
        return pointer_version(base.read_bytes(), str(base)) if base.is_file() else None

    def open_proposals(self, model_name: str) -> list[OpenProposal]:
        folder = Path(self.root) / ModelStoreKeys(model_name).releases_prefix
        found = []
        for body in sorted(folder.glob(f"*/{PULL_REQUEST_BODY}")) if folder.is_dir() else []:
            if (body.parent / PULL_REQUEST_STATE).exists():
                continue
            version, _ = proposal_version(body.parent.name)
            found.append(OpenProposal(version, str(body), str(body.parent.relative_to(self.root))))
        return found


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` at `path` under a temporary name, then rename: a reader never sees half a file."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        tmp.write_text(text)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def pointer_version(content: bytes, where: str) -> str:
    """The version a serving pointer file names."""
    try:
        version = json.loads(content)["version"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{where} is not a pointer file (a JSON object with a version)") from None
    if not isinstance(version, str) or not version:
        raise ValueError(f"{where} names no version")
    return version
