"""A small stateful GitHub REST API on `pytest-httpserver`, for the release pull request.

GitHub has no local emulator. This implements, with GitHub's status codes and error bodies, exactly
the endpoints a release uses: the repository, branches, `git/refs`, `contents/{path}` (GET and
PUT), and pulls (list with `state`/`head`/`base` filters, create, get one, close with PATCH). The
test plays the reviewer with `merge`, `close` and `commit` (e.g. a revert on main). It keeps branches, files and pull
requests in memory so that retried or resumed attempts meet the state earlier attempts left, and it
records every request (method, path, query, JSON body, headers) for assertions. The real PyGithub
client talks to it through `base_url=<server>/api/v3`, the GitHub Enterprise URL layout.

Not modelled: pagination beyond one page, merge conflicts, reviews, permissions per endpoint (one token,
checked on every call), rate limits.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

OWNER, REPO = "acme", "serving-config"
TOKEN = "ghp_test0123456789abcdefTOKEN"
API = "/api/v3"


@dataclass
class Call:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]


@dataclass
class GitHubStandIn:
    """State of one repository and the requests made to it.

    Attributes:
        server: The HTTP server (from pytest-httpserver) answering requests.
        token: The only token accepted; other Authorization headers get 401 "Bad credentials".
        branches: Branch name -> head commit sha.
        files: Branch name -> path -> file bytes.
        pulls: Every pull request, as GitHub's JSON.
        calls: Every request, in order.
        overrides: Canned (status, body) answers for "METHOD path-suffix" keys, each used once, that
            take precedence over the fake's own logic (to inject races and server errors).
    """

    server: HTTPServer
    token: str = TOKEN
    branches: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    pulls: list[dict[str, Any]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    overrides: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    _shas: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return self.server.url_for(API)

    @property
    def repository(self) -> str:
        return f"{OWNER}/{REPO}"

    def _url(self, path: str = "") -> str:
        return f"{self.base_url}/repos/{OWNER}/{REPO}{path}"

    def _new_sha(self) -> str:
        return hashlib.sha1(str(next(self._shas)).encode()).hexdigest()

    def seed(self, branch: str = "main", files: dict[str, str] | None = None) -> None:
        """Create `branch` with `files` committed on it."""
        self.branches[branch] = self._new_sha()
        self.files[branch] = {path: text.encode() for path, text in (files or {}).items()}

    def override(self, key: str, status: int, body: Any) -> None:
        """Answer the next request matching key ("POST /pulls") with `status` and JSON `body`."""
        self.overrides.setdefault(key, []).append((status, body))

    def calls_to(self, method: str, suffix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.endswith(suffix)]

    def open_pulls(self) -> list[dict[str, Any]]:
        return [p for p in self.pulls if p["state"] == "open"]

    def pull(self, url_or_number: str | int) -> dict[str, Any]:
        return next(p for p in self.pulls if url_or_number in (p["number"], p["html_url"]))

    def commit(self, branch: str, path: str, content: str) -> None:
        """A person's commit on `branch` (for example a revert of the pointer file on main)."""
        self.files[branch][path] = content.encode()
        self.branches[branch] = self._new_sha()

    def merge(self, url_or_number: str | int) -> None:
        """A reviewer merges the pull request: the base branch takes the head branch's files."""
        pull = self.pull(url_or_number)
        head, base = pull["head"]["ref"], pull["base"]["ref"]
        self.files[base] = dict(self.files[head])
        self.branches[base] = self._new_sha()
        pull.update(state="closed", merged=True)

    def close(self, url_or_number: str | int) -> None:
        """A reviewer closes the pull request without merging it."""
        self.pull(url_or_number).update(state="closed")

    # --- JSON shapes GitHub returns (only the fields PyGithub reads) ------------------------------

    def _repo_json(self) -> dict[str, Any]:
        return {
            "id": 1,
            "name": REPO,
            "full_name": self.repository,
            "owner": {"login": OWNER, "type": "Organization"},
            "url": self._url(),
            "html_url": f"https://github.example/{self.repository}",
            "default_branch": "main",
            "private": True,
        }

    def _pull_json(self, number: int, head: str, base: str, title: str, body: str) -> dict[str, Any]:
        return {
            "id": 1000 + number,
            "number": number,
            "state": "open",
            "title": title,
            "body": body,
            "url": self._url(f"/pulls/{number}"),
            "html_url": f"https://github.example/{self.repository}/pull/{number}",
            "merged": False,
            "head": {"ref": head, "label": f"{OWNER}:{head}", "sha": self.branches.get(head, "")},
            "base": {"ref": base, "label": f"{OWNER}:{base}", "sha": self.branches.get(base, "")},
        }

    def _content_json(self, branch: str, path: str) -> dict[str, Any]:
        data = self.files[branch][path]
        return {
            "type": "file",
            "encoding": "base64",
            "size": len(data),
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "content": base64.b64encode(data).decode(),
            "sha": hashlib.sha1(b"blob " + data).hexdigest(),
            "url": self._url(f"/contents/{path}?ref={branch}"),
        }

    # --- request handling -----------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        body = request.get_json(silent=True) if request.data else None
        path = request.path
        self.calls.append(Call(request.method, path, dict(request.args), body, dict(request.headers)))
        if request.headers.get("Authorization") != f"token {self.token}":
            return _json(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})
        prefix = f"{API}/repos/{OWNER}/{REPO}"
        if not path.startswith(prefix):
            return _json(404, {"message": "Not Found"})
        rest = path[len(prefix) :]
        for key, answers in self.overrides.items():
            method, suffix = key.split(" ", 1)
            if answers and request.method == method and rest.endswith(suffix):
                status, canned = answers.pop(0)
                return _json(status, canned)
        return self._route(request.method, rest, dict(request.args), body or {})

    def _route(self, method: str, rest: str, query: dict[str, str], body: dict[str, Any]) -> Response:
        if method == "GET" and rest == "":
            return _json(200, self._repo_json())
        if method == "GET" and rest.startswith("/branches/"):
            name = rest[len("/branches/") :]
            if name not in self.branches:
                return _json(404, {"message": "Branch not found"})
            return _json(
                200,
                {
                    "name": name,
                    "commit": {"sha": self.branches[name], "url": self._url(f"/commits/{self.branches[name]}")},
                    "protected": False,
                },
            )
        if method == "POST" and rest == "/git/refs":
            ref = body.get("ref", "")
            if not ref.startswith("refs/heads/") or not body.get("sha"):
                return _json(422, {"message": "Reference name must start with 'refs/' and sha is required"})
            name = ref[len("refs/heads/") :]
            if name in self.branches:
                return _json(422, {"message": "Reference already exists"})
            source = next((b for b, sha in self.branches.items() if sha == body["sha"]), None)
            if source is None:
                return _json(422, {"message": "Object does not exist"})
            self.branches[name] = body["sha"]
            self.files[name] = dict(self.files[source])
            return _json(
                201, {"ref": ref, "url": self._url(f"/git/{ref}"), "object": {"sha": body["sha"], "type": "commit"}}
            )
        if rest.startswith("/contents/"):
            file_path = rest[len("/contents/") :]
            branch = (query.get("ref") if method == "GET" else body.get("branch")) or "main"
            if branch not in self.branches:
                return _json(404, {"message": f"No commit found for the ref {branch}"})
            exists = file_path in self.files[branch]
            if method == "GET":
                return (
                    _json(200, self._content_json(branch, file_path))
                    if exists
                    else _json(404, {"message": "Not Found"})
                )
            if method == "PUT":
                if exists and body.get("sha") != self._content_json(branch, file_path)["sha"]:
                    if not body.get("sha"):
                        return _json(422, {"message": 'Invalid request.\n\n"sha" wasn\'t supplied.'})
                    return _json(409, {"message": f"{file_path} does not match {body.get('sha')}"})
                self.files[branch][file_path] = base64.b64decode(body["content"])
                self.branches[branch] = commit = self._new_sha()
                return _json(
                    200 if exists else 201,
                    {
                        "content": self._content_json(branch, file_path),
                        "commit": {
                            "sha": commit,
                            "message": body.get("message"),
                            "url": self._url(f"/git/commits/{commit}"),
                        },
                    },
                )
        if rest == "/pulls" and method == "GET":
            found = [
                p
                for p in self.pulls
                if (query.get("state", "open") in ("all", p["state"]))
                and (not query.get("head") or p["head"]["label"] == query["head"])
                and (not query.get("base") or p["base"]["ref"] == query["base"])
            ]
            return _json(200, found)
        if rest.startswith("/pulls/") and rest[len("/pulls/") :].isdigit():
            number = int(rest[len("/pulls/") :])
            found = next((p for p in self.pulls if p["number"] == number), None)
            if found is None:
                return _json(404, {"message": "Not Found"})
            if method == "PATCH" and body.get("state") == "closed" and not found["merged"]:
                found["state"] = "closed"
            return _json(200, found)
        if rest == "/pulls" and method == "POST":
            head, base = body.get("head", ""), body.get("base", "")
            if head not in self.branches or base not in self.branches:
                return _json(
                    422,
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "PullRequest",
                                "field": "head" if head not in self.branches else "base",
                                "code": "invalid",
                            }
                        ],
                    },
                )
            if any(p["head"]["ref"] == head and p["base"]["ref"] == base for p in self.open_pulls()):
                return _pull_request_refused(f"A pull request already exists for {OWNER}:{head}.")
            if self.files[head] == self.files[base]:
                return _pull_request_refused(f"No commits between {base} and {head}")
            pull = self._pull_json(len(self.pulls) + 1, head, base, body.get("title", ""), body.get("body", ""))
            self.pulls.append(pull)
            return _json(201, pull)
        return _json(404, {"message": "Not Found"})


def _pull_request_refused(message: str) -> Response:
    """GitHub's 422 for a pull request it will not open, with the reason PyGithub surfaces."""
    errors = [{"resource": "PullRequest", "code": "custom", "message": message}]
    return _json(422, {"message": "Validation Failed", "errors": errors})


def _json(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


@pytest.fixture
def github_standin(httpserver: HTTPServer) -> Iterator[GitHubStandIn]:
    """A repository `acme/serving-config` with a `main` branch on a local GitHub REST API.

    Stand-in for GitHub (github.com or Enterprise Server), which cannot be reached from tests: the
    real PyGithub client sends real HTTP to pytest-httpserver, so URLs, query strings, JSON bodies
    and the Authorization header are exactly what GitHub would receive.
    """
    fake = GitHubStandIn(server=httpserver)
    fake.seed("main", {"README.md": "serving configuration\n"})
    httpserver.expect_request(re.compile(f"^{API}/.*")).respond_with_handler(fake.handle)
    yield fake
    httpserver.check_assertions()
