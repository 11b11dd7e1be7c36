"""`python -m recsys_assets models ...`: query the model registry, and promote, roll back or reject versions.

`promote` and `rollback` open a release pull request exactly as a training run does (locally: a
proposal under the model store), so the champion moves only when it is merged and the audit trail
is the same. With the local publisher, `merge` plays the reviewer; `sync` records what happened to
the pull requests right away instead of waiting for the `release_pull_requests` sensor.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from recsys_assets.cli.command import Command
from recsys_assets.domain.layout import serving_pointer_path
from recsys_assets.domain.registry import TransitionError, VersionStatus, champion_of, rollback_target
from recsys_assets.domain.reports import registry_listing, version_summary, versions_diff_table

if TYPE_CHECKING:
    import dagster as dg

    from recsys_assets.resources.registry import ModelRegistry, Transition
    from recsys_assets.resources.release import ReleasePublisher


def _arguments(models: argparse.ArgumentParser) -> None:
    """The `models` subcommands."""
    # Default: the model's pointer file (`serving_pointer_path`), as the release asset writes it.
    models.add_argument("--pointer-path", help=argparse.SUPPRESS)
    sub = models.add_subparsers(dest="models_command", required=True)
    sub.add_parser("list", help="every version: state, created, family, data window, metrics, pull request")
    sub.add_parser("show", help="one version's manifest summary and state history").add_argument("version")
    diff = sub.add_parser("diff", help="metrics, parameters and data of two versions side by side")
    diff.add_argument("a")
    diff.add_argument("b")
    sub.add_parser("promote", help="open a release pull request for VERSION").add_argument("version")
    rollback = sub.add_parser("rollback", help="open a release pull request back to VERSION (default: the previous)")
    rollback.add_argument("version", nargs="?")
    sub.add_parser("reject", help="close VERSION's open release pull request and record it rejected").add_argument(
        "version"
    )
    sub.add_parser("merge", help="local publisher only: merge VERSION's release proposal").add_argument("version")
    sub.add_parser("sync", help="record merged/closed/reverted pull requests now (what the sensor does)")


def _print_transitions(transitions: list[Transition]) -> None:
    for t in transitions:
        print(f"{t.version} -> {t.state}: {t.reason}")
    if not transitions:
        print("no change")


def _list(registry: ModelRegistry) -> None:
    statuses = registry.statuses()
    champion = champion_of(statuses)
    # Versions with a bundle, and versions whose bundle became unreadable but whose history remains.
    versions = sorted(set(registry.store.list_versions(registry.model_name)) | set(statuses))
    rows = [(version, statuses.get(version), registry.readable_manifest(version)) for version in versions]
    print(registry_listing(champion.version if champion else None, rows))


def _show(registry: ModelRegistry, version: str, artifacts_root: str | None = None) -> None:
    print(version_summary(registry.model_name, version, registry.manifest(version), registry.status(version)))
    if artifacts_root is not None:
        _print_outcomes(artifacts_root, version)


def _print_outcomes(artifacts_root: str, version: str) -> None:
    """The served lists' outcome on each day this version served them (`recommendation_outcomes`)."""
    from recsys_assets.delivery.recommendation_outcomes import version_outcomes
    from recsys_assets.domain.outcomes import outcome_table

    served = version_outcomes(artifacts_root, version)
    if not served:
        print("outcome: no measured day of lists served by this version")
        return
    print(f"outcome of the lists it served ({len(served)} days):")
    print(outcome_table(served))


def _diff(registry: ModelRegistry, a: str, b: str) -> None:
    print(versions_diff_table(a, b, registry.manifest(a), registry.manifest(b)))


def _proposed(registry: ModelRegistry, version: str) -> VersionStatus:
    registry.manifest_bytes(version)
    status = registry.status(version)
    if status is None or status.state != "proposed" or status.pull_request_id is None:
        raise TransitionError(f"version {version} is {status.state if status else 'not proposed'}: no open proposal")
    return status


def _report(
    registry: ModelRegistry, transitions: list[Transition], dagster_instance: dg.DagsterInstance | None
) -> None:
    """Record each change as an observation of `model_release`, so its page shows it at once (no run needed)."""
    if not transitions:
        return
    from recsys_assets.cli.pipeline import instance
    from recsys_assets.release.model_release import release_observation

    dagster_instance = dagster_instance or instance()
    for transition in transitions:
        dagster_instance.report_runless_asset_event(release_observation(registry, transition))


def run_models(
    args: argparse.Namespace,
    resources: dict[str, Any],
    model_name: str,
    dagster_instance: dg.DagsterInstance | None = None,
) -> int:
    """Run one `models` subcommand; 2 with a one-line message on bad input."""
    from recsys_assets.resources.model_store import ModelStoreError
    from recsys_assets.resources.registry import (
        ModelRegistry,
        Transition,
        UnknownVersionError,
        propose_release,
        sync_registry,
    )
    from recsys_assets.resources.release import LocalReleasePublisher

    registry = ModelRegistry(resources["model_store"], model_name, resources["tracker"])
    publisher: ReleasePublisher = resources["release_publisher"]
    command, pointer_path = args.models_command, args.pointer_path or serving_pointer_path(model_name)
    try:
        if command == "list":
            _list(registry)
        elif command == "show":
            _show(registry, args.version, resources["artifacts"].root_uri)
        elif command == "diff":
            _diff(registry, args.a, args.b)
        elif command in ("promote", "rollback"):
            version = args.version
            if command == "rollback" and version is None:
                target = rollback_target(registry.statuses())
                if target is None:
                    raise TransitionError("no earlier released version to roll back to")
                version = target.version
            champion = registry.champion()
            reason = f"{command} from {champion.version if champion else 'no champion'}"
            result = propose_release(registry, publisher, version, pointer_path, reason)
            _report(registry, [Transition(version, "proposed", reason)] if result.created else [], dagster_instance)
            print(f"{version} proposed ({'opened' if result.created else 'already open'}): {result.url}")
            print("the champion moves when the pull request is merged")
        elif command == "reject":
            status = _proposed(registry, args.version)
            publisher.close(status.pull_request_id)  # type: ignore[arg-type]
            registry.record(args.version, "rejected", "rejected from the command line")
            _report(
                registry, [Transition(args.version, "rejected", "rejected from the command line")], dagster_instance
            )
            print(f"{args.version} rejected; {status.pull_request} closed")
        elif command == "merge":
            if not isinstance(publisher, LocalReleasePublisher):
                raise TransitionError("merge is for the local publisher; merge the pull request on GitHub instead")
            status = _proposed(registry, args.version)
            publisher.merge(status.pull_request_id, pointer_path)  # type: ignore[arg-type]
            transitions = sync_registry(registry, publisher, pointer_path)
            _report(registry, transitions, dagster_instance)
            _print_transitions(transitions)
        elif command == "sync":
            transitions = sync_registry(registry, publisher, pointer_path)
            _report(registry, transitions, dagster_instance)
            _print_transitions(transitions)
    except (UnknownVersionError, TransitionError, ValueError) as exc:
        _print_quarantined(registry, str(exc))
        print(f"models {command}: {exc}", file=sys.stderr)
        return 2
    except (RuntimeError, ModelStoreError) as exc:  # the publisher or the store failed
        _print_quarantined(registry, str(exc))
        print(f"models {command}: {exc}", file=sys.stderr)
        return 1
    _print_quarantined(registry)
    return 0


def _print_quarantined(registry: ModelRegistry, cause: str = "") -> None:
    """Name every record the command found unreadable (the rest of the registry was used as it is)."""
    for note in registry.quarantined:
        if note.line() != cause:  # the cause itself is the last line
            print(note.line(), file=sys.stderr)


COMMAND = Command(
    "models",
    "list, inspect, promote, roll back or reject model versions",
    _arguments,
    lambda args, context: run_models(args, context.resources, context.settings.model_name),
)
