"""What the UI shows about every asset: owner, tags, kinds of the configured backends, code version."""

from __future__ import annotations

from recsys_assets.resources import backend_of
from recsys_assets.settings import SETTINGS, code_version

# One group: seven assets read at a glance in the lineage view; kinds show what each step talks to.
GROUP = "recommender"
OWNERS = ["team:ml-platform"]
TAGS = {"domain": "recommendations", "model": SETTINGS.model_name}
# The git commit: a new commit marks every asset's code as changed in the UI, which is the truth.
CODE_VERSION = code_version()

# Kind icons name the service a step really talks to; embedded backends show as neutral kinds.
_BACKEND_KINDS = {
    "warehouse": {"duckdb": "duckdb", "bigquery": "bigquery"},
    "model_store": {"local": "filesystem", "s3": "s3"},
    "release_publisher": {"local": "filesystem", "github": "github"},
    "training_launcher": {"subprocess": "python", "docker": "docker", "vertex": "vertexai"},
}


def kinds(*resources: str, extra: tuple[str, ...] = ()) -> set[str]:
    """Kinds of an asset: the configured backend of each resource it uses, plus `extra`."""
    return {_BACKEND_KINDS[name][backend_of(name)] for name in resources} | set(extra)


def asset_attributes(*resources: str, extra_kinds: tuple[str, ...] = ()) -> dict:
    """Keyword arguments every asset shares: daily partitions are passed separately."""
    return {
        "owners": OWNERS,
        "tags": TAGS,
        "code_version": CODE_VERSION,
        "kinds": kinds(*resources, extra=extra_kinds),
    }
