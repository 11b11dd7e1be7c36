"""Release publishing: proposing a model promotion, and its local (no network) implementation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from pydantic import Field

from recsys_assets.domain.layout import PULL_REQUEST_BODY, ModelStoreKeys


@dataclass(frozen=True)
class ReleaseProposal:
    """A request to promote one model version: the pointer file to commit and the PR text."""

    model_name: str
    version: str
    pointer_path: str
    pointer_content: str
    title: str
    body: str

    @property
    def branch(self) -> str:
        return f"release/{self.model_name}/{self.version}"


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


class LocalReleasePublisher(ReleasePublisher):
    """Writes the pointer file and pull-request body under a local folder instead of opening a PR."""

    root: str = Field(description="Folder that receives releases/<model_name>/<version>/.")

    def propose(self, proposal: ReleaseProposal) -> ReleaseResult:
        folder = Path(self.root) / ModelStoreKeys(proposal.model_name).release_folder(proposal.version)
        body_path = folder / PULL_REQUEST_BODY
        if body_path.exists():
            return ReleaseResult(url=str(body_path), identifier=str(folder), created=False)
        pointer = folder / proposal.pointer_path
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_text(proposal.pointer_content)
        # The body is written last: its presence marks a complete proposal.
        body_path.write_text(f"# {proposal.title}\n\n{proposal.body}\n")
        return ReleaseResult(url=str(body_path), identifier=str(folder), created=True)
