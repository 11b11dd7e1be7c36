"""`gc [--dry-run]`: apply the retention policy now, printing what it removes (or would) and the bytes."""

from __future__ import annotations

import argparse

from recsys_assets.cli.command import Command, Context


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")


def _gc(args: argparse.Namespace, context: Context) -> int:
    from recsys_assets.cli.pipeline import instance
    from recsys_assets.retention import collect

    settings = context.settings
    outcome = collect(
        artifacts_root=context.resources["artifacts"].root_uri,
        model_store=context.resources["model_store"],
        model_name=settings.model_name,
        instance=instance(),
        keep_runs=settings.retention_runs,
        keep_days=settings.retention_days,
        dry_run=args.dry_run,
    )
    for line in outcome.lines:
        print(line)
    print(outcome.summary())
    return 0


COMMAND = Command(
    "gc",
    "remove old run folders and unneeded bundle files (RECSYS_RETENTION_RUNS, RECSYS_RETENTION_DAYS)",
    _arguments,
    _gc,
)
