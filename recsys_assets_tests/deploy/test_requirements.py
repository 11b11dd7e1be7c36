"""The lock files and the extras: what each install and each image target gets.

`make lock-check` (CI) re-resolves setup.py with uv and compares; these tests need no network: every
requirement of setup.py is satisfied by its lock file's pins, every pin carries hashes, `pip install .` pulls
none of the deploy-only packages, and the training target holds what the training worker imports and no more.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO / "requirements"
DEPLOY_ONLY = {"dagster-webserver", "dagster-postgres", "dagster-k8s", "kubernetes"}
PYTHONS = ("3.11", "3.12", "3.13", "3.14")


@cache
def setup_lists() -> dict[str, list[str]]:
    """setup.py's module-level requirement lists (TRAINING_REQUIRES, ...), read without running it."""
    lists = {}
    for node in ast.parse((REPO / "setup.py").read_text()).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id.endswith("_REQUIRES"):
            lists[target.id] = ast.literal_eval(node.value)  # type: ignore[union-attr]
    return lists


@cache
def pins(lock: str) -> dict[str, list[tuple[str, Marker | None, int]]]:
    """name -> [(version, marker, number of hashes)] from a uv lock file."""
    found: dict[str, list[tuple[str, Marker | None, int]]] = {}
    text = (REQUIREMENTS / lock).read_text()
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        match = re.match(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)(?:\s*;\s*([^\\\n]+))?", block)
        if match:
            name, version, marker = match.groups()
            entry = (version, Marker(marker.strip()) if marker else None, block.count("--hash=sha256:"))
            found.setdefault(canonicalize_name(name.split("[")[0]), []).append(entry)
    return found


def pinned_for(lock: str, name: str, python: str) -> str | None:
    environment = {"python_version": python, "python_full_version": python + ".0", "sys_platform": "linux"}
    for version, marker, _ in pins(lock).get(canonicalize_name(name), []):
        if marker is None or marker.evaluate(environment):
            return version
    return None


LOCKS = {
    "dev.txt": (
        "TRAINING_REQUIRES",
        "ORCHESTRATION_REQUIRES",
        "DEPLOY_REQUIRES",
        "MLFLOW_REQUIRES",
        "SERVE_REQUIRES",
        "DEV_REQUIRES",
    ),
    # The platform image runs the online service too (deploy/: `serve`, `recsys-serve`).
    "platform.txt": (
        "TRAINING_REQUIRES",
        "ORCHESTRATION_REQUIRES",
        "DEPLOY_REQUIRES",
        "MLFLOW_REQUIRES",
        "SERVE_REQUIRES",
    ),
    "training.txt": ("TRAINING_REQUIRES",),
}


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_of_setup_py_is_pinned_with_hashes(lock):
    assert pins(lock), f"requirements/{lock} pins nothing"
    assert all(hashes for entries in pins(lock).values() for _, _, hashes in entries), "a pin without a hash"
    unmet = []
    for group in LOCKS[lock]:
        for line in setup_lists()[group]:
            requirement = Requirement(line)
            for python in PYTHONS:
                version = pinned_for(lock, requirement.name, python)
                if version is None or not requirement.specifier.contains(version, prereleases=True):
                    unmet.append(f"{line} (Python {python}: {version or 'not pinned'})")
    assert not unmet, f"requirements/{lock} does not satisfy setup.py: run `make lock`: {unmet}"


def test_the_same_version_everywhere():
    """The image locks are constrained by the dev lock: CI tests exactly the versions the images ship."""
    for lock in ("platform.txt", "training.txt"):
        for name in pins(lock):
            for python in PYTHONS:
                assert pinned_for(lock, name, python) == pinned_for("dev.txt", name, python), (lock, name, python)


def test_a_plain_install_pulls_no_deploy_only_package():
    """`pip install .` (make demo) installs install_requires and what they require: no webserver, PostgreSQL
    storage or Kubernetes client, walked through the installed packages' own metadata."""
    setup = (REPO / "setup.py").read_text()
    assert "install_requires=TRAINING_REQUIRES + ORCHESTRATION_REQUIRES" in setup
    seen: set[str] = set()
    queue = [Requirement(r) for r in setup_lists()["TRAINING_REQUIRES"] + setup_lists()["ORCHESTRATION_REQUIRES"]]
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name in seen or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        queue.extend(Requirement(r) for r in metadata.requires(name) or [])
    assert seen & DEPLOY_ONLY == set(), seen & DEPLOY_ONLY
    assert {"dagster", "dagster-gcp", "implicit"} <= seen
    # The deploy extra brings them.
    assert {canonicalize_name(Requirement(r).name) for r in setup_lists()["DEPLOY_REQUIRES"]} >= DEPLOY_ONLY - {
        "kubernetes"
    }


def test_the_training_target_holds_no_orchestration_package():
    training = set(pins("training.txt"))
    assert not training & {
        *DEPLOY_ONLY,
        "dagster",
        "dagster-gcp",
        "google-api-python-client",
        "grpcio",
        "mlflow-skinny",
    }
    assert {"dagster-pipes", "implicit", "google-cloud-storage", "boto3"} <= training


# A process that can import only the standard library, the project and the training lock's distributions.
IMPORT_GUARD = """
import importlib.abc, importlib.metadata, sys
allowed = set(sys.argv[1].split(","))
owners = importlib.metadata.packages_distributions()
class Guard(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in sys.stdlib_module_names or top == "recsys_assets" or top.startswith("_"):
            return None
        distributions = {d.lower().replace("_", "-") for d in owners.get(top, [])}
        if distributions and not distributions & allowed:
            raise ImportError(f"{name} ({', '.join(sorted(distributions))}) is not in requirements/training.txt")
        return None
sys.meta_path.insert(0, Guard())
import recsys_assets.training.worker, recsys_assets.pipes.worker, recsys_assets.train
import boto3, google.cloud.storage  # the Pipes channels the worker opens lazily
from dagster_pipes import PipesGCSMessageWriter, PipesS3MessageWriter
print("ok")
"""


@pytest.mark.slow  # imports the training stack in a fresh process (a few seconds)
def test_the_training_worker_imports_only_what_the_training_target_installs():
    allowed = ",".join(sorted(pins("training.txt")))
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_GUARD, allowed], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]

    # The guard bites: the code location imports Dagster, which the training target does not have.
    broken = IMPORT_GUARD.replace("import recsys_assets.training.worker,", "import recsys_assets.definitions,")
    result = subprocess.run([sys.executable, "-c", broken, allowed], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "not in requirements/training.txt" in result.stderr
