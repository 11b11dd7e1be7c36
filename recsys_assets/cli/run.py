"""`run` materializes the graph for a partition; `demo` seeds synthetic data if the warehouse is empty, then runs."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from typing import TYPE_CHECKING

from recsys_assets.cli.command import Command, Context
from recsys_assets.cli.data import seed_synthetic, synthetic_arguments, synthetic_spec
from recsys_assets.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from recsys_assets.cli.pipeline import PipelineOutcome


def report(outcome: PipelineOutcome) -> int:
    """Print what a run did (extract, search, holdout tables, bundle), its cause last; the exit status."""
    from recsys_assets.domain.reports import evaluation_text, selection_text

    if outcome.extracted:
        print(f"\nextracted {outcome.extracted[0]} .. {outcome.extracted[1]} from the warehouse")
    elif outcome.success:
        print("\nevery window day was already extracted and is unchanged in the warehouse: nothing to extract")
    if outcome.skipped:
        print(f"\nretrain skipped: {outcome.skipped}")
    if outcome.report:
        print(selection_text(outcome.report))
    if outcome.evaluation:
        family = outcome.report.model.family if outcome.report else "model"
        print(evaluation_text(outcome.evaluation, family, outcome.partition_key))
    if outcome.bundle and outcome.report:
        print(
            f"\nserved (model.npz): {outcome.report.model.family} refitted on the whole window, "
            f"{outcome.report.full_interactions:,} pairs; scored above: evaluated/<protocol>.npz"
        )
    if outcome.bundle:
        released = "" if outcome.success else " (written, not released)"
        print(f"\nmodel bundle {outcome.bundle.version}{released}: {outcome.bundle.uri}")
    # The cause comes last, so the final line of a failed run says what stopped it.
    for reason in outcome.failures:
        print(f"\n{reason}", file=sys.stderr)
    if not outcome.success and not outcome.failures:
        print("\nrun failed: see the Dagster run log above", file=sys.stderr)
    return 0 if outcome.success else 1


def run_config(path: str) -> dict:
    """The run config in the YAML file at `path` (a mapping, as the launchpad takes it)."""
    import yaml

    try:
        with open(path) as file:
            config = yaml.safe_load(file) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"run config {path}: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigurationError(f"run config {path} is not a mapping")
    return config


def _materialize(args: argparse.Namespace, context: Context) -> int:
    status, _ = materialize(args, context)
    return status


def materialize(args: argparse.Namespace, context: Context) -> tuple[int, PipelineOutcome | None]:
    """Materialize `--partition` (default: the warehouse's latest day) and print the report: status, outcome."""
    from recsys_assets.cli.pipeline import PartitionBusyError, latest_partition, materialize_partition

    config = run_config(args.config) if getattr(args, "config", None) else None
    resources = context.resources
    partition = (
        args.partition.isoformat() if getattr(args, "partition", None) else latest_partition(resources["warehouse"])
    )
    print(f"materializing the graph for partition {partition} ...")
    try:
        outcome = materialize_partition(partition, resources, run_config=config)
    except PartitionBusyError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 4, None
    return report(outcome), outcome


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--partition", type=date.fromisoformat, help="YYYY-MM-DD (default: the latest day in the warehouse)"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML run config, as in the launchpad (e.g. ops: {trained_model: {config: {trials_per_family: 2}}})",
    )


def _demo(args: argparse.Namespace, context: Context) -> int:
    warehouse = context.resources["warehouse"]
    # An unreachable warehouse raises here: "unavailable" must never be taken for "empty".
    if args.replace or not warehouse.existing_partitions():
        status = seed_synthetic(
            context.settings, warehouse, synthetic_spec(args), args.replace, context.resources["item_catalogue"]
        )
        if status:
            return status
    status, outcome = materialize(args, context)
    if status == 0 and outcome is not None:
        status = deliver(context, outcome.partition_key)
    if status == 0 and outcome is not None:
        from recsys_assets.service.cli import demo_hint

        # How to promote what the demo built, serve it and ask it for a list.
        version = outcome.bundle.version if outcome.bundle else None
        print(demo_hint(context.resources["model_store"], context.settings.model_name, version))
    return status


def deliver(context: Context, partition_key: str) -> int:
    """Serve the released champion's lists of the day and the day before, then print three users' lists and the
    outcome of the day before's lists against the counterfactual."""
    from recsys_assets.cli.pipeline import materialize_delivery
    from recsys_assets.cli.recommend import sample_users, served_list_text
    from recsys_assets.delivery.recommendation_outcomes import outcome_path
    from recsys_assets.domain import storage

    resources = context.resources
    print(f"\nserving the released champion's lists of {partition_key} and the day before ...")
    failures = materialize_delivery(partition_key, resources)
    if failures:
        print("\n".join(["delivery failed:", *failures]), file=sys.stderr)
        return 1
    day = date.fromisoformat(partition_key)
    lists = resources["recommendation_store"].read_day(day)
    print(
        f"\nserved lists of {partition_key}: {lists.num_rows:,} rows in {resources['recommendation_store'].table_ref}"
    )
    if lists.num_rows and lists["model_version"][0].as_py() == "none":
        print("no champion released yet: these are popularity's lists (merge the release, then run again)")
    for user in sample_users(lists, 3):
        print(served_list_text(resources, user, day, limit=5))
    path = outcome_path(resources["artifacts"].root_uri, partition_key)
    record = storage.read_json(path) if storage.exists(path) else {}
    if "hit_rate" in record:
        print(
            f"\noutcome of the lists served on {record['served_on']} ({record['version']}), measured on {partition_key}: "
            f"hit rate {record['hit_rate']:.4f} against {record['counterfactual_hit_rate']:.4f} for popularity over "
            f"the last 7 days (lift {record['hit_rate'] - record['counterfactual_hit_rate']:+.4f}); NDCG "
            f"{record['ndcg']:.4f} against {record['counterfactual_ndcg']:.4f}"
        )
        trained_until = _trained_until(resources, context.settings.model_name, record["version"])
        if trained_until and trained_until >= record["served_on"]:
            print(
                f"(a backfill: {record['version']} was trained on data up to {trained_until}, so it saw the day it is "
                "measured on; the daily runs measure each day's lists on the next day's interactions)"
            )
    else:
        print(f"\noutcome of {partition_key}: {record.get('note', 'not measured')}")
    return 0


def _trained_until(resources: dict, model_name: str, version: str) -> str | None:
    """The last day of `version`'s training data, or None (popularity lists, or an unreadable manifest)."""
    from recsys_assets.resources.registry import ModelRegistry

    manifest = ModelRegistry(resources["model_store"], model_name).readable_manifest(version)
    return manifest.data.window.end if manifest else None


RUN = Command("run", "run the whole graph on what the warehouse holds", _run_arguments, _materialize)
DEMO = Command(
    "demo", "seed synthetic data if the warehouse is empty, then run the whole graph", synthetic_arguments, _demo
)
