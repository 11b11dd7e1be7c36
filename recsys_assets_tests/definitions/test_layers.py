"""Dependencies point one way: domain <- resources <- assets <- definitions (checked on the source).

Also on the source: only the settings reader reads the environment, no import circle, and neither the
package nor the benchmarks import the tests. Importing the package is checked in a fresh process.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import recsys_assets

PACKAGE_ROOT = Path(recsys_assets.__file__).parent
BENCHMARKS = PACKAGE_ROOT.parent / "benchmarks"
SETTINGS_READER = "recsys_assets.settings"
ASSET_PACKAGES = ("extract", "features", "training", "evaluation", "release", "delivery")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, runtime_only: bool = False) -> set[str]:
    """Every module `path` imports, at any depth (function-local imports count too).

    `runtime_only` leaves out type-only imports (under `if TYPE_CHECKING:`), which are never executed.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if runtime_only and isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from recsys_assets.domain import storage` imports the submodule `storage`.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


GRAPH = {module_name(path): imports_of(path) for path in PACKAGE_ROOT.rglob("*.py")}


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offending(source_package: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if within(module, source_package)
        for target in targets
        if any(within(target, package) for package in forbidden)
    )


def test_the_walk_sees_the_whole_package():
    assert {"recsys_assets.domain.metrics", "recsys_assets.training.trained_model", "recsys_assets.definitions"} <= set(
        GRAPH
    )
    assert "recsys_assets.domain.metrics" in GRAPH["recsys_assets.domain.selection"]


def test_domain_imports_nothing_but_domain_and_third_party_libraries():
    internal = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if within(module, "recsys_assets.domain")
        for target in targets
        if within(target, "recsys_assets") and not within(target, "recsys_assets.domain")
    )
    assert internal == []
    assert offending("recsys_assets.domain", ("dagster", "dagster_pipes", "dagster_gcp", "dagster_aws")) == []


@pytest.mark.parametrize("package", ASSET_PACKAGES)
def test_no_asset_package_imports_another(package):
    others = tuple(f"recsys_assets.{other}" for other in ASSET_PACKAGES if other != package)
    assert offending(f"recsys_assets.{package}", others) == []


def test_training_and_evaluation_code_do_not_import_each_other():
    assert offending("recsys_assets.training", ("recsys_assets.evaluation",)) == []
    assert offending("recsys_assets.evaluation", ("recsys_assets.training",)) == []
    # The same rule inside the domain: models do not know the metrics, the metrics do not know the models.
    assert offending("recsys_assets.domain.families", ("recsys_assets.domain.metrics",)) == []
    assert offending("recsys_assets.domain.metrics", ("recsys_assets.domain.families",)) == []


def test_resources_and_pipes_know_no_assets():
    assets = (*tuple(f"recsys_assets.{package}" for package in ASSET_PACKAGES), "recsys_assets.definitions")
    assert offending("recsys_assets.resources", assets) == []
    assert offending("recsys_assets.pipes", assets) == []


def test_the_cli_builds_its_own_resources():
    # `definitions` is the code location Dagster loads; the CLI builds the resources it needs itself.
    assert offending("recsys_assets.cli", ("recsys_assets.definitions",)) == []
    assert offending("recsys_assets.__main__", ("recsys_assets.definitions",)) == []


# -- the environment is read in one place ------------------------------------------------------------------------

ENVIRONMENT_ACCESS = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(path: Path) -> list[str]:
    """Every `os.environ`-like use in `path`, as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_ACCESS:
            if isinstance(node.value, ast.Name) and node.value.id in ("os", "posix"):
                found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix"):
            found += [f"{node.lineno}: from os import {a.name}" for a in node.names if a.name in ENVIRONMENT_ACCESS]
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_the_walk_finds_environment_reads(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom os import getenv\nos.environ.get('X')\nos.getenv('Y')\nos.path.join('a')\n")
    assert environment_reads(sample) == ["2: from os import getenv", "3: os.environ", "4: os.getenv"]


@pytest.mark.slow
def test_no_module_but_the_settings_reader_reads_the_environment():
    readers = {
        module_name(path): reads
        for path in PACKAGE_ROOT.rglob("*.py")
        if module_name(path) != SETTINGS_READER and (reads := environment_reads(path))
    }
    assert readers == {}
    assert environment_reads(PACKAGE_ROOT / "settings.py")  # the reader itself is seen by the walk


# -- no import circle; the tests stay outside -------------------------------------------------------------------


@pytest.mark.slow
def test_no_import_circle_in_the_package():
    graph = {
        module_name(path): {t for t in imports_of(path, runtime_only=True) if t in GRAPH and t != module_name(path)}
        for path in PACKAGE_ROOT.rglob("*.py")
    }
    circles = []
    state: dict[str, str] = {}  # "open" while on the walk's path, "done" after

    def walk(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                walk(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert circles == []


@pytest.mark.slow
def test_neither_the_package_nor_the_benchmarks_import_the_tests():
    sources = [*PACKAGE_ROOT.rglob("*.py"), *BENCHMARKS.rglob("*.py")]
    assert len(sources) > len(GRAPH)
    importers = sorted(
        str(path.relative_to(PACKAGE_ROOT.parent))
        for path in sources
        if any(within(target, "recsys_assets_tests") for target in imports_of(path))
    )
    assert importers == []


# -- importing builds nothing ---------------------------------------------------------------------------------

IMPORT_EVERYTHING = """
import gc, importlib, json, os, pkgutil, sys
# Libraries that set variables when imported (KMP_DUPLICATE_LIB_OK), imported before the snapshot: the
# check is about this package's own code.
import sklearn, threadpoolctl
before = dict(os.environ)
import recsys_assets
modules = [info.name for info in pkgutil.walk_packages(recsys_assets.__path__, "recsys_assets.")]
for name in modules:
    importlib.import_module(name)
import dagster as dg
built = sorted(
    type(obj).__name__ for obj in gc.get_objects() if isinstance(obj, (dg.ConfigurableResource, dg.Definitions))
)
changed = sorted(name for name in {*before, *os.environ} if before.get(name) != os.environ.get(name))
print(json.dumps({"modules": len(modules), "built": built, "environment_changed": changed}))
"""


@pytest.mark.slow  # a fresh interpreter imports Dagster and every client library: seconds
def test_importing_every_module_builds_no_resource_and_sets_no_environment_variable():
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PACKAGE_ROOT.parent), "HOME": str(Path.home())}
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["modules"] >= len(GRAPH) - 1  # every module but the package itself
    assert found["built"] == [] and found["environment_changed"] == []
