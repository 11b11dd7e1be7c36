"""GitHubReleasePublisher against a local GitHub REST API, through the real PyGithub client."""

from __future__ import annotations

import base64
import json
import traceback

import pytest

from recsys_assets.resources import build_resources
from recsys_assets.resources.github import GitHubReleasePublisher, ReleasePublishError
from recsys_assets.resources.release import ReleaseProposal
from recsys_assets_tests.support.clients import publisher, secrets_with_token
from recsys_assets_tests.support.standins.github import OWNER, TOKEN

POINTER_PATH = "models/jobs-als.json"
PROPOSAL = ReleaseProposal(
    model_name="jobs-als",
    version="20260310T120000Z-abcd1234",
    pointer_path=POINTER_PATH,
    pointer_content=json.dumps({"model_name": "jobs-als", "version": "20260310T120000Z-abcd1234"}, indent=2) + "\n",
    title="Release jobs-als 20260310T120000Z-abcd1234",
    body="Promotes **jobs-als**.\n\n| metric | champion | challenger |\n",
)
BRANCH = "release/jobs-als/20260310T120000Z-abcd1234"


def everything_about(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc.args)


def test_opens_a_pull_request_with_the_pointer_commit(github_standin, tmp_path):
    result = publisher(github_standin, tmp_path).propose(PROPOSAL)

    assert result.created is True
    assert result.url == f"https://github.example/{github_standin.repository}/pull/1"
    assert result.identifier == f"{github_standin.repository}#1"
    sequence = [
        (c.method, c.path.removeprefix(f"/api/v3/repos/{github_standin.repository}")) for c in github_standin.calls
    ]
    assert sequence == [
        ("GET", ""),
        ("GET", "/pulls"),
        ("GET", "/branches/main"),
        ("POST", "/git/refs"),
        ("GET", f"/contents/{POINTER_PATH}"),
        ("PUT", f"/contents/{POINTER_PATH}"),
        ("POST", "/pulls"),
    ]
    listing = github_standin.calls_to("GET", "/pulls")[0]
    assert listing.query == {"state": "open", "head": f"{OWNER}:{BRANCH}", "base": "main"}
    ref = github_standin.calls_to("POST", "/git/refs")[0].json
    assert ref == {"ref": f"refs/heads/{BRANCH}", "sha": github_standin.branches["main"]}
    put = github_standin.calls_to("PUT", f"/contents/{POINTER_PATH}")[0].json
    assert put["branch"] == BRANCH and "sha" not in put and put["message"] == PROPOSAL.title
    assert base64.b64decode(put["content"]).decode() == PROPOSAL.pointer_content
    pull = github_standin.calls_to("POST", "/pulls")[0].json
    assert pull == {"base": "main", "head": BRANCH, "title": PROPOSAL.title, "body": PROPOSAL.body}
    assert all(c.headers["Authorization"] == f"token {TOKEN}" for c in github_standin.calls)
    assert github_standin.files[BRANCH][POINTER_PATH].decode() == PROPOSAL.pointer_content
    assert POINTER_PATH not in github_standin.files["main"]  # main changes only when a person merges


def test_an_existing_pointer_is_updated_with_its_sha(github_standin, tmp_path):
    github_standin.seed("main", {POINTER_PATH: '{"version": "older"}\n'})
    assert publisher(github_standin, tmp_path).propose(PROPOSAL).created
    put = github_standin.calls_to("PUT", f"/contents/{POINTER_PATH}")[0].json
    assert put["sha"] and base64.b64decode(put["content"]).decode() == PROPOSAL.pointer_content


def test_an_open_pull_request_is_returned_not_duplicated(github_standin, tmp_path):
    first = publisher(github_standin, tmp_path).propose(PROPOSAL)
    calls_before = len(github_standin.calls)
    again = publisher(github_standin, tmp_path).propose(PROPOSAL)

    assert again.created is False and again.url == first.url and again.identifier == first.identifier
    assert len(github_standin.pulls) == 1
    assert [c.method for c in github_standin.calls[calls_before:]] == ["GET", "GET"]  # repo, list pulls: no writes


def test_an_attempt_that_died_midway_is_completed(github_standin, tmp_path):
    # The first attempt created the branch and committed, then lost the connection opening the PR.
    github_standin.override("POST /pulls", 502, {"message": "Server Error"})
    with pytest.raises(ReleasePublishError, match="HTTP 502"):
        publisher(github_standin, tmp_path).propose(PROPOSAL)
    assert BRANCH in github_standin.branches and github_standin.pulls == []

    result = publisher(github_standin, tmp_path).propose(PROPOSAL)
    assert result.created is True and len(github_standin.pulls) == 1
    assert len(github_standin.calls_to("PUT", f"/contents/{POINTER_PATH}")) == 1  # the commit was reused, not repeated


def test_a_pull_request_opened_concurrently_resolves_to_that_one(github_standin, tmp_path):
    other = publisher(github_standin, tmp_path).propose(PROPOSAL)
    # Our listing misses it (opened between our list and our create): GitHub answers the create with 422.
    github_standin.override("GET /pulls", 200, [])
    result = publisher(github_standin, tmp_path).propose(PROPOSAL)
    assert result.created is False and result.url == other.url
    assert len(github_standin.pulls) == 1


def test_a_422_gives_a_clear_error(github_standin, tmp_path):
    github_standin.seed("main", {POINTER_PATH: PROPOSAL.pointer_content})  # main already points at this version
    with pytest.raises(ReleasePublishError) as caught:
        publisher(github_standin, tmp_path).propose(PROPOSAL)
    message = str(caught.value)
    assert "opening the pull request" in message and "HTTP 422" in message
    assert "No commits between main and " + BRANCH in message and github_standin.repository in message
    assert TOKEN not in everything_about(caught.value)


def test_a_rejected_token_names_the_secret_but_never_shows_the_token(github_standin, tmp_path):
    wrong = "ghp_wrong_token_value_0000"
    with pytest.raises(ReleasePublishError) as caught:
        publisher(github_standin, tmp_path, secrets=secrets_with_token(tmp_path / "wrong", wrong)).propose(PROPOSAL)
    message = str(caught.value)
    assert "HTTP 401" in message and "Bad credentials" in message and "github-token@file:" in message
    assert wrong not in everything_about(caught.value) and TOKEN not in everything_about(caught.value)
    assert github_standin.calls[0].headers["Authorization"] == f"token {wrong}"  # it was sent, as it must be


def test_secret_references_name_the_token_version_only(github_standin, tmp_path):
    publisher_ = publisher(github_standin, tmp_path)
    publisher_.propose(PROPOSAL)
    assert publisher_.secret_references() == [f"github-token@file:{tmp_path}/secrets/github-token"]
    assert TOKEN not in repr(publisher_)


def test_selected_by_environment(github_standin, tmp_path):
    secrets_with_token(tmp_path, TOKEN)
    (tmp_path / "secrets" / "release-bot").write_text(TOKEN)
    env = {
        "RECSYS_DATA_DIR": str(tmp_path),
        "RECSYS_SECRETS_DIR": str(tmp_path / "secrets"),
        "RECSYS_RELEASE": "github",
        "RECSYS_GITHUB_REPOSITORY": github_standin.repository,
        "RECSYS_GITHUB_BASE_URL": github_standin.base_url,
        "RECSYS_GITHUB_BASE_BRANCH": "main",
        "RECSYS_GITHUB_TOKEN_SECRET": "release-bot@latest",
    }
    resources = build_resources(env)
    release = resources["release_publisher"]
    assert isinstance(release, GitHubReleasePublisher) and release.secrets is resources["secrets"]
    assert release.token_secret == "release-bot" and release.token_secret_version == "latest"
    assert (
        release.model_copy(update={"seconds_between_requests": 0, "seconds_between_writes": 0})
        .propose(PROPOSAL)
        .created
    )
    with pytest.raises(ValueError, match="RECSYS_GITHUB_REPOSITORY"):
        build_resources({**env, "RECSYS_GITHUB_REPOSITORY": "not-a-repo"})
