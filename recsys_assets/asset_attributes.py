"""What the UI shows about every asset: owner, tags, kinds of the configured backends, code version."""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import dagster as dg
from dagster._core.definitions.decorators.op_decorator import DecoratedOpFunction

from recsys_assets.resources import backend
from recsys_assets.settings import Settings, code_version, process_settings

# One group: seven assets read at a glance in the lineage view; kinds show what each step talks to.
GROUP = "recommender"
OWNERS = ["team:ml-platform"]
TAGS = {"domain": "recommendations", "model": process_settings().model_name}
# The git commit: a new commit marks every asset's code as changed in the UI, which is the truth.
CODE_VERSION = code_version()


def kinds(*resources: str, extra: tuple[str, ...] = (), settings: Settings | None = None) -> set[str]:
    """Kinds of an asset: the kind of each resource's configured backend (`resources.BACKENDS`), plus `extra`."""
    settings = settings or process_settings()
    configured = (backend(name, settings).kind for name in resources)
    return {kind for kind in configured if kind} | set(extra)


def asset_attributes(*resources: str, extra_kinds: tuple[str, ...] = ()) -> dict:
    """Keyword arguments every asset shares: daily partitions are passed separately."""
    return {
        "owners": OWNERS,
        "tags": TAGS,
        "code_version": CODE_VERSION,
        "kinds": kinds(*resources, extra=extra_kinds),
    }


def with_source_links(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    """`assets` with a link to the source of each one's own function (the UI's "source" on the asset page).

    `dg.with_source_code_references` links the outermost function, which is `@guarded_step`'s wrapper
    in step_errors.py for every asset here; this follows the wrapper to the asset's own definition.
    """
    linked = []
    for asset in assets:
        compute = asset.op.compute_fn
        fn = inspect.unwrap(compute.decorated_fn if isinstance(compute, DecoratedOpFunction) else compute)
        reference = dg.LocalFileCodeReference(
            file_path=str(inspect.getsourcefile(fn)), line_number=inspect.getsourcelines(fn)[1]
        )
        links = {"dagster/code_references": dg.CodeReferencesMetadataValue(code_references=[reference])}
        linked.append(asset.map_asset_specs(lambda spec, links=links: spec.merge_attributes(metadata=links)))
    return linked
