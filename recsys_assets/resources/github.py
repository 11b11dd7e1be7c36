"""Release pull requests on GitHub (or GitHub Enterprise) through PyGithub, token from the secrets resource.

Project-owned because `dagster_github.GithubResource` is deprecated upstream.
"""

from __future__ import annotations

from typing import Any, NoReturn
from urllib.parse import urlparse

import requests
from github import Auth, Github, GithubException, GithubRetry
from github.Repository import Repository
from pydantic import Field, PrivateAttr, field_validator

from recsys_assets.domain.failures import Verdict, classify, one_line
from recsys_assets.domain.redaction import scrub
from recsys_assets.resources.release import (
    OpenProposal,
    PullRequestState,
    ReleaseProposal,
    ReleasePublisher,
    ReleaseResult,
    pointer_version,
    proposal_version,
)
from recsys_assets.resources.secrets import Secret, SecretStore


class ReleasePublishError(RuntimeError):
    """GitHub refused or failed a step of opening the release pull request; never carries the token.

    `verdict` is the classification (`domain.failures`) of the error it replaces, which it does not
    chain: a rejected token is permanent, an unreachable GitHub transient.
    """

    def __init__(self, message: str, verdict: Verdict = "unknown"):
        super().__init__(message)
        self.verdict = verdict


def _github_message(exc: GithubException) -> str:
    """GitHub's own explanation: the top-level message plus any per-field errors of a 422."""
    data = exc.data if isinstance(exc.data, dict) else {}
    parts = [str(data.get("message") or exc.message or "no message")]
    for error in data.get("errors") or []:
        parts.append(str(error.get("message") or error.get("code") or error) if isinstance(error, dict) else str(error))
    return "; ".join(parts)


class GitHubReleasePublisher(ReleasePublisher):
    """Opens a pull request on GitHub that changes the serving pointer file to the new model version."""

    secrets: SecretStore = Field(description="Where the GitHub token is read from at run time.")
    repository: str = Field(description="Repository that holds the serving pointer, as owner/name.")
    base_branch: str = Field(default="main", description="Branch the release pull request targets.")
    base_url: str = Field(
        default="https://api.github.com",
        description="GitHub API root; for GitHub Enterprise Server https://<host>/api/v3.",
    )

    @field_validator("base_url")
    @classmethod
    def _no_token_in_clear(cls, value: str) -> str:
        """The token travels in a header: plain http is only acceptable to this machine (a test stand-in)."""
        url = urlparse(value)
        if url.scheme == "https" or (url.scheme == "http" and url.hostname in ("127.0.0.1", "localhost", "::1")):
            return value
        raise ValueError(f"RECSYS_GITHUB_BASE_URL={value!r} must be https:// (http only for a loopback host)")

    token_secret: str = Field(
        default="github-token",
        description="Secret holding a token allowed to push branches and open pull requests on the repository.",
    )
    token_secret_version: str = Field(default="latest", description="Version of token_secret.")
    timeout_seconds: int = Field(default=30, description="Timeout of each GitHub API request.")
    max_retries: int = Field(default=3, description="Retries of a request on 5xx answers and rate limits (0 for none).")
    seconds_between_requests: float = Field(
        default=0.25, description="Pause between requests, which keeps clear of GitHub's secondary rate limits."
    )
    seconds_between_writes: float = Field(
        default=1.0, description="Pause between writes, which GitHub asks of clients that create content."
    )

    _client: Github | None = PrivateAttr(default=None)
    _token: Secret | None = PrivateAttr(default=None)

    def _github(self) -> Github:
        # Read on first use inside the run, so the token never sits in resource config (which Dagster stores).
        if self._client is None:
            self._token = self.secrets.access(self.token_secret, self.token_secret_version)
            self._client = Github(
                base_url=self.base_url.rstrip("/"),
                auth=Auth.Token(self._token.value),
                timeout=self.timeout_seconds,
                retry=GithubRetry(total=self.max_retries) if self.max_retries > 0 else None,
                seconds_between_requests=self.seconds_between_requests or None,
                seconds_between_writes=self.seconds_between_writes or None,
            )
        return self._client

    def secret_references(self) -> list[str]:
        """The token's secret as name@resolved version (never its value); reads it if nothing has yet."""
        self._github()
        return [self._token.reference()] if self._token else []

    def _fail(self, step: str, exc: GithubException | requests.RequestException, hint: str = "") -> NoReturn:
        if isinstance(exc, GithubException):
            cause = f"(HTTP {exc.status}): {_github_message(exc)}"
        else:
            # requests' own errors (unreachable host, timeout, a header it refuses to send) are not
            # GithubExceptions; InvalidHeader quotes the header, token included.
            cause = f"({one_line(exc)})"
            if isinstance(exc, requests.exceptions.InvalidHeader):
                hint = hint or f"the token in secret {self._token_name()} holds characters an HTTP header cannot carry"
        text = f"GitHub {step} on {self.repository} at {self.base_url} failed {cause}"
        if hint:
            text += f". {hint}"
        # `from None`: the client's exception carries the raw request or response, nothing useful
        # beyond what is quoted above, and nothing from it should reach a log unscrubbed.
        raise ReleasePublishError(scrub(text), classify(exc)) from None

    def _token_name(self) -> str:
        return self._token.reference() if self._token else self.token_secret

    def _open_pull(self, repo: Repository, branch: str) -> Any | None:
        owner = self.repository.split("/", 1)[0]
        pulls = repo.get_pulls(state="open", head=f"{owner}:{branch}", base=self.base_branch)
        return next(iter(pulls), None)

    def _result(self, pull: Any, created: bool) -> ReleaseResult:
        return ReleaseResult(url=pull.html_url, identifier=f"{self.repository}#{pull.number}", created=created)

    def propose(self, proposal: ReleaseProposal) -> ReleaseResult:
        """Open the release pull request, or return the one already open for this version.

        Every step can be repeated: an attempt that died after creating the branch or committing the
        pointer is completed by the next one rather than duplicated.

        Raises:
            ReleasePublishError: GitHub refused a step (bad token, no access, validation error).
        """
        branch = proposal.branch
        step = "reading the repository"
        try:
            repo = self._github().get_repo(self.repository)
            step = "listing open pull requests"
            existing = self._open_pull(repo, branch)
            if existing is not None:
                return self._result(existing, created=False)

            step = f"reading branch {self.base_branch}"
            base_sha = repo.get_branch(self.base_branch).commit.sha
            step = f"creating branch {branch}"
            try:
                repo.create_git_ref(f"refs/heads/{branch}", base_sha)
            except GithubException as exc:
                # Left by an earlier attempt that died midway: reuse it.
                if not (exc.status == 422 and "already exists" in _github_message(exc)):
                    raise

            step = f"reading {proposal.pointer_path} on {branch}"
            try:
                current = repo.get_contents(proposal.pointer_path, ref=branch)
            except GithubException as exc:
                if exc.status != 404:
                    raise
                current = None
            if isinstance(current, list):
                raise ReleasePublishError(
                    f"{proposal.pointer_path} in {self.repository} is a directory, not a file", "permanent"
                )
            step = f"committing {proposal.pointer_path} on {branch}"
            if current is None:
                repo.create_file(proposal.pointer_path, proposal.title, proposal.pointer_content, branch=branch)
            elif current.decoded_content != proposal.pointer_content.encode():
                repo.update_file(
                    proposal.pointer_path, proposal.title, proposal.pointer_content, current.sha, branch=branch
                )
            # else: an earlier attempt already committed exactly this pointer.

            step = f"opening the pull request {branch} -> {self.base_branch}"
            try:
                pull = repo.create_pull(base=self.base_branch, head=branch, title=proposal.title, body=proposal.body)
            except GithubException as exc:
                if exc.status == 422 and "pull request already exists" in _github_message(exc).lower():
                    # Another run opened it between our check and our create.
                    existing = self._open_pull(repo, branch)
                    if existing is not None:
                        return self._result(existing, created=False)
                raise
            return self._result(pull, created=True)
        except GithubException as exc:
            self._fail(step, exc, self._hint(exc.status))
        except requests.RequestException as exc:
            self._fail(step, exc)

    def _hint(self, status: int) -> str:
        return {
            401: f"the token in secret {self._token_name()} was rejected",
            403: "the token needs contents:write and pull-requests:write on the repository",
            404: "the repository, branch, path or pull request does not exist or the token cannot see it",
            422: "GitHub refused the request as invalid (see its message)",
        }.get(status, "")

    def _pull_number(self, identifier: str) -> int:
        repository, _, number = identifier.rpartition("#")
        if repository != self.repository or not number.isdigit():
            raise ValueError(f"{identifier!r} is not a pull request of {self.repository} (owner/name#number)")
        return int(number)

    def pull_request_state(self, identifier: str) -> PullRequestState:
        number = self._pull_number(identifier)
        try:
            pull = self._github().get_repo(self.repository).get_pull(number)
            merged, state = pull.merged, pull.state
        except GithubException as exc:
            self._fail(f"reading pull request #{number}", exc, self._hint(exc.status))
        except requests.RequestException as exc:
            self._fail(f"reading pull request #{number}", exc)
        if merged:
            return "merged"
        return "closed" if state == "closed" else "open"

    def close(self, identifier: str) -> None:
        number = self._pull_number(identifier)
        try:
            self._github().get_repo(self.repository).get_pull(number).edit(state="closed")
        except GithubException as exc:
            self._fail(f"closing pull request #{number}", exc, self._hint(exc.status))
        except requests.RequestException as exc:
            self._fail(f"closing pull request #{number}", exc)

    def base_pointer_version(self, pointer_path: str) -> str | None:
        step = "reading the repository"
        try:
            # Not lazy: a missing repository must fail here, not read as "no pointer file" (a revert).
            repo = self._github().get_repo(self.repository)
            step = f"reading {pointer_path} on {self.base_branch}"
            try:
                content = repo.get_contents(pointer_path, ref=self.base_branch)
            except GithubException as exc:
                # GitHub answers a missing file with exactly this; a missing branch says "No commit found".
                if exc.status == 404 and _github_message(exc) == "Not Found":
                    return None
                raise
        except GithubException as exc:
            self._fail(step, exc, self._hint(exc.status))
        except requests.RequestException as exc:
            self._fail(step, exc)
        if isinstance(content, list):
            raise ReleasePublishError(f"{pointer_path} in {self.repository} is a directory, not a file", "permanent")
        return pointer_version(content.decoded_content, f"{pointer_path} on {self.repository}@{self.base_branch}")

    def open_proposals(self, model_name: str) -> list[OpenProposal]:
        """Open pull requests into the base branch from `release/<model>/...` branches (one listing, paginated)."""
        prefix = f"release/{model_name}/"
        step = f"listing open pull requests into {self.base_branch}"
        try:
            pulls = self._github().get_repo(self.repository).get_pulls(state="open", base=self.base_branch)
            return [
                OpenProposal(
                    proposal_version(pull.head.ref[len(prefix) :])[0], pull.html_url, f"{self.repository}#{pull.number}"
                )
                for pull in pulls
                if pull.head.ref.startswith(prefix)
            ]
        except GithubException as exc:
            self._fail(step, exc, self._hint(exc.status))
        except requests.RequestException as exc:
            self._fail(step, exc)
