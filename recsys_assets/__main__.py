"""Command line: `python -m recsys_assets {demo,run,import-events,import-items,seed,models,serve}`."""

from __future__ import annotations

import argparse
import gc
import math
import sys
import traceback
from datetime import date
from typing import TYPE_CHECKING

from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.events import day_of, rows_per_value
from recsys_assets.domain.redaction import scrubbed_output
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events

if TYPE_CHECKING:
    from recsys_assets.pipeline import PipelineOutcome
    from recsys_assets.resources.catalogue import ItemCatalogue
    from recsys_assets.resources.warehouse import Warehouse


def _seed(warehouse: Warehouse, spec: SyntheticSpec, replace: bool, catalogue: ItemCatalogue | None = None) -> int:
    """Write synthetic events (and their postings); days that already hold events are only replaced with `replace`."""
    events = generate_events(spec)
    existing = {p.partition_key: p.total_rows for p in warehouse.existing_partitions()}
    overlap = sorted(set(rows_per_value(day_of(events["event_ts"]))) & set(existing))
    if overlap and not replace:
        print(
            f"refused: {warehouse.table_ref} already holds events on {len(overlap)} of the days to seed "
            f"({overlap[0]} .. {overlap[-1]}); pass --replace to overwrite them",
            file=sys.stderr,
        )
        return 2
    days = warehouse.replace_days(events)
    _record_first_day(days)
    print(f"seeded {events.num_rows:,} synthetic events over {len(days)} days into {warehouse.table_ref}")
    if catalogue is not None:
        from recsys_assets.domain.items import generate_catalogue

        written = catalogue.replace_items(generate_catalogue(spec))
        print(f"seeded {written:,} synthetic postings into {catalogue.table_ref}")
    return 0


def _import_items(args: argparse.Namespace, catalogue: ItemCatalogue) -> int:
    """`import-items FILE`: upsert a catalogue file's postings by id (a re-imported posting replaces its row)."""
    from recsys_assets.domain.event_importer import ImportRejectedError
    from recsys_assets.domain.item_importer import read_items_file

    try:
        items, report = read_items_file(args.file, args.format)
    except ImportRejectedError as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 2
    summary = (
        f"{report.rows_kept:,} of {report.rows_read:,} items into {catalogue.table_ref} (dropped: {report.dropped()})"
    )
    if args.dry_run:
        print(f"dry run: would import {summary}")
        return 0
    catalogue.replace_items(items)
    print(f"imported {summary}; next: python -m recsys_assets run")
    return 0


SHOWN_DAYS = 20  # days listed one per line by an import, of each kind (replaced, new)


def _record_first_day(days: dict[str, int]) -> None:
    """Partitions start where the data does: remember the first day written (see `settings`)."""
    from recsys_assets.settings import SETTINGS, record_first_day

    record_first_day(SETTINGS.data_dir, list(days))


def _print_replaced(before: dict[str, int], after: dict[str, int], dry_run: bool) -> None:
    """Rows before -> after for each day an import replaces (a replaced day loses its old rows), then the new days.

    A long history would print thousands of lines: beyond `SHOWN_DAYS` of each kind, a count stands for the rest.
    """
    verb = "would replace" if dry_run else "replaced"
    replaced = sorted(day for day in after if day in before)
    new = sorted(day for day in after if day not in before)
    for day in replaced[:SHOWN_DAYS]:
        print(f"  {day}: {before[day]:,} -> {after[day]:,} rows ({verb})")
    if len(replaced) > SHOWN_DAYS:
        print(f"  ... and {len(replaced) - SHOWN_DAYS:,} more days {verb}")
    for day in new[:SHOWN_DAYS]:
        print(f"  {day}: 0 -> {after[day]:,} rows (new day)")
    if len(new) > SHOWN_DAYS:
        rows = sum(after[day] for day in new[SHOWN_DAYS:])
        print(f"  ... and {len(new) - SHOWN_DAYS:,} more new days up to {new[-1]} ({rows:,} rows)")


def _report(outcome: PipelineOutcome) -> int:
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


def _run_config(path: str) -> dict:
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


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value


def cli() -> int:
    """The program (`python -m recsys_assets`, the `recsys-assets` script): `main` in a process of its own.

    Objects alive now (the imported modules) and at the end live until exit: frozen, the garbage
    collector stops re-scanning them during the run and does not collect them at exit (~0.8 s of a
    1 M-event run, benchmarks/README.md). Only here, never in `main`, which tests call in a process
    that goes on (a frozen garbage cycle is never freed).
    """
    gc.freeze()
    status = main()
    gc.freeze()
    return status


def main(argv: list[str] | None = None) -> int:
    # Everything the command prints (its own lines, Dagster's console log, a traceback) passes
    # through the secret scrubber: a token or a URL's password never reaches the terminal or a CI log.
    with scrubbed_output():
        try:
            return _main(argv)
        except ConfigurationError as exc:
            # Settings are read when the first module that needs them is imported, so a bad setting
            # can surface anywhere below: it is one line, never a traceback.
            print(f"configuration error: {exc}", file=sys.stderr)
            return 2
        except Exception:
            # An error nothing above expected: its traceback, scrubbed, and its cause as the last line.
            traceback.print_exc()
            return 1


def _main(argv: list[str] | None) -> int:
    from recsys_assets.models_cli import add_models_parser
    from recsys_assets.resources.warehouse import WarehouseUnavailable
    from recsys_assets.service.cli import add_serve_parser

    parser = argparse.ArgumentParser(prog="python -m recsys_assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="seed synthetic data if the warehouse is empty, then run the whole graph")
    seed = commands.add_parser("seed", help="write synthetic job-board events into the warehouse")
    for sub in (demo, seed):
        sub.add_argument("--users", type=_positive_int, default=SyntheticSpec.n_users)
        sub.add_argument("--items", type=_positive_int, default=SyntheticSpec.n_items)
        sub.add_argument("--days", type=_positive_int, default=SyntheticSpec.n_days)
        sub.add_argument("--events-per-day", type=_positive_int, default=SyntheticSpec.events_per_day)
        sub.add_argument("--seed", type=int, default=SyntheticSpec.seed)
        sub.add_argument("--replace", action="store_true", help="overwrite days that already hold events")

    run = commands.add_parser("run", help="run the whole graph on what the warehouse holds")
    run.add_argument(
        "--partition", type=date.fromisoformat, help="YYYY-MM-DD (default: the latest day in the warehouse)"
    )
    run.add_argument(
        "--config",
        metavar="FILE",
        help="YAML run config, as in the launchpad (e.g. ops: {trained_model: {config: {trials_per_family: 2}}})",
    )

    imp = commands.add_parser("import-events", help="load a CSV/Parquet/MovieLens file into the warehouse")
    imp.add_argument("file")
    imp.add_argument("--format", choices=("events", "movielens"), default="events")
    imp.add_argument("--min-rating", type=_finite_float, help="MovieLens: keep ratings at or above this value")
    imp.add_argument(
        "--max-invalid-share",
        type=_share,
        default=0.01,
        help="refuse the file when more than this share of rows is malformed (default 0.01)",
    )
    imp.add_argument("--dry-run", action="store_true", help="check the file and show what would change; write nothing")
    items = commands.add_parser(
        "import-items", help="load a CSV/Parquet catalogue or MovieLens u.item / movies.csv into the item catalogue"
    )
    items.add_argument("file")
    items.add_argument("--format", choices=("items", "movielens"), default="items")
    items.add_argument("--dry-run", action="store_true", help="check the file and show what it holds; write nothing")
    add_models_parser(commands)
    add_serve_parser(commands)
    args = parser.parse_args(argv)
    try:
        return _command(args)
    except WarehouseUnavailable as exc:
        print(f"warehouse unavailable: {exc}", file=sys.stderr)
        return 3


def _command(args: argparse.Namespace) -> int:
    from recsys_assets.models_cli import run_models
    from recsys_assets.resources import build_resources

    if args.command == "serve":
        from recsys_assets.service.cli import run_serve

        return run_serve(args)
    resources = build_resources()
    if args.command == "models":
        return run_models(args, resources)
    warehouse = resources["warehouse"]

    if args.command in ("demo", "seed"):
        spec = SyntheticSpec(
            n_users=args.users, n_items=args.items, n_days=args.days, events_per_day=args.events_per_day, seed=args.seed
        )
        # An unreachable warehouse raises here: "unavailable" must never be taken for "empty".
        if args.command == "seed" or args.replace or not warehouse.existing_partitions():
            status = _seed(warehouse, spec, replace=args.replace, catalogue=resources["item_catalogue"])
            if status or args.command == "seed":
                return status
    if args.command == "import-events":
        from recsys_assets.domain.event_importer import ImportRejectedError, read_events_file
        from recsys_assets.settings import explicit_partitions_start

        try:
            # Only a configured start bounds an import; otherwise the import itself sets where partitions start.
            events, report = read_events_file(
                args.file, args.format, args.min_rating, args.max_invalid_share, earliest=explicit_partitions_start()
            )
        except ImportRejectedError as exc:
            print(f"import refused: {exc}", file=sys.stderr)
            return 2
        before = {p.partition_key: p.total_rows for p in warehouse.existing_partitions()}
        after = rows_per_value(day_of(events["event_ts"]))
        summary = f"{report.rows_kept:,} of {report.rows_read:,} rows into {len(after)} daily partitions of"
        if args.dry_run:
            print(f"dry run: would import {summary} {warehouse.table_ref} (dropped: {report.dropped()})")
            _print_replaced(before, after, dry_run=True)
            return 0
        days = warehouse.replace_days(events)
        _record_first_day(days)
        print(f"imported {summary} {warehouse.table_ref} (dropped: {report.dropped()})")
        _print_replaced(before, days, dry_run=False)
        if days:
            print(f"days {min(days)} .. {max(days)}; next: python -m recsys_assets run")
        return 0

    if args.command == "import-items":
        return _import_items(args, resources["item_catalogue"])

    from recsys_assets.pipeline import PartitionBusyError, latest_partition, materialize_partition
    from recsys_assets.settings import SETTINGS

    run_config = _run_config(args.config) if getattr(args, "config", None) else None
    partition = args.partition.isoformat() if getattr(args, "partition", None) else latest_partition(warehouse)
    print(f"materializing the graph for partition {partition} ...")
    try:
        outcome = materialize_partition(partition, resources, run_config=run_config)
        status = _report(outcome)
        if args.command == "demo" and status == 0:
            from recsys_assets.service.cli import demo_hint

            print(demo_hint(resources["model_store"], SETTINGS.model_name, outcome.bundle and outcome.bundle.version))
        return status
    except PartitionBusyError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(cli())
