"""Dependencies point one way: domain <- resources <- assets <- definitions (checked on the source)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import recsys_assets

PACKAGE_ROOT = Path(recsys_assets.__file__).parent
ASSET_PACKAGES = ("extract", "features", "training", "evaluation", "release")


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


def test_the_cli_builds_resources_once():
    # `definitions` builds the resources when imported; the CLI and pipeline build their own instead.
    assert offending("recsys_assets.pipeline", ("recsys_assets.definitions",)) == []
    assert offending("recsys_assets.__main__", ("recsys_assets.definitions",)) == []


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
