"""The data commands: `seed` synthetic events, `import-events` and `import-items` from files."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from recsys_assets.cli.command import Command, Context, finite_float, positive_int, share
from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.events import day_of, rows_per_value
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events
from recsys_assets.settings import Settings, record_first_day

if TYPE_CHECKING:
    from recsys_assets.resources.catalogue import ItemCatalogue
    from recsys_assets.resources.warehouse import Warehouse

SHOWN_DAYS = 20  # days listed one per line by an import, of each kind (replaced, new)


def synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    """The synthetic data set's shape (`seed`, `demo`)."""
    parser.add_argument("--users", type=positive_int, default=SyntheticSpec.n_users)
    parser.add_argument("--items", type=positive_int, default=SyntheticSpec.n_items)
    parser.add_argument("--days", type=positive_int, default=SyntheticSpec.n_days)
    parser.add_argument("--events-per-day", type=positive_int, default=SyntheticSpec.events_per_day)
    parser.add_argument("--seed", type=int, default=SyntheticSpec.seed)
    parser.add_argument("--replace", action="store_true", help="overwrite days that already hold events")
    parser.add_argument(
        "--drift-from",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="from this day a new segment of postings takes half of the traffic (what the retrain trigger watches)",
    )


def synthetic_spec(args: argparse.Namespace) -> SyntheticSpec:
    spec = SyntheticSpec(
        n_users=args.users, n_items=args.items, n_days=args.days, events_per_day=args.events_per_day, seed=args.seed
    )
    drift_from = getattr(args, "drift_from", None)
    if drift_from is not None and not spec.start_date < drift_from <= spec.end_date:
        raise ConfigurationError(
            f"--drift-from {drift_from} is outside the seeded days after the first ({spec.start_date} .. {spec.end_date})"
        )
    return dataclasses.replace(spec, drift_from=drift_from)


def seed_synthetic(
    settings: Settings, warehouse: Warehouse, spec: SyntheticSpec, replace: bool, catalogue: ItemCatalogue | None
) -> int:
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
    # Partitions start where the data does: remember the first day written (see `Settings.first_partition`).
    record_first_day(settings.data_dir, list(days))
    print(f"seeded {events.num_rows:,} synthetic events over {len(days)} days into {warehouse.table_ref}")
    if catalogue is not None:
        from recsys_assets.domain.items import generate_catalogue

        written = catalogue.replace_items(generate_catalogue(spec))
        print(f"seeded {written:,} synthetic postings into {catalogue.table_ref}")
    return 0


def _seed(args: argparse.Namespace, context: Context) -> int:
    resources = context.resources
    spec = synthetic_spec(args)
    return seed_synthetic(context.settings, resources["warehouse"], spec, args.replace, resources["item_catalogue"])


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


def _import_events_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file")
    parser.add_argument("--format", choices=("events", "movielens"), default="events")
    parser.add_argument("--min-rating", type=finite_float, help="MovieLens: keep ratings at or above this value")
    parser.add_argument(
        "--max-invalid-share",
        type=share,
        default=0.01,
        help="refuse the file when more than this share of rows is malformed (default 0.01)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check the file and show what would change; write nothing"
    )


def _import_events(args: argparse.Namespace, context: Context) -> int:
    """`import-events FILE`: replace the file's days in the warehouse, after checking every row."""
    from recsys_assets.domain.event_importer import ImportRejectedError, read_events_file

    try:
        # Only a configured start bounds an import; otherwise the import itself sets where partitions start.
        events, report = read_events_file(
            args.file, args.format, args.min_rating, args.max_invalid_share, earliest=context.settings.partitions_start
        )
    except ImportRejectedError as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 2
    warehouse = context.resources["warehouse"]
    before = {p.partition_key: p.total_rows for p in warehouse.existing_partitions()}
    after = rows_per_value(day_of(events["event_ts"]))
    summary = f"{report.rows_kept:,} of {report.rows_read:,} rows into {len(after)} daily partitions of"
    if args.dry_run:
        print(f"dry run: would import {summary} {warehouse.table_ref} (dropped: {report.dropped()})")
        _print_replaced(before, after, dry_run=True)
        return 0
    days = warehouse.replace_days(events)
    record_first_day(context.settings.data_dir, list(days))
    print(f"imported {summary} {warehouse.table_ref} (dropped: {report.dropped()})")
    _print_replaced(before, days, dry_run=False)
    if days:
        print(f"days {min(days)} .. {max(days)}")
        for line in fitting_settings(events, context.settings.training_window_days):
            print(line)
        print("next: python -m recsys_assets run")
    return 0


def fitting_settings(events: pa.Table, window_days: int) -> list[str]:
    """The history's span and the window and global cut that fit it, from each user's first and last event."""
    from recsys_assets.domain.params import SplitParams
    from recsys_assets.domain.splitting import history_advice

    spans = events.group_by("user_id").aggregate([("event_ts", "min"), ("event_ts", "max")])

    def days(column: str) -> np.ndarray:
        seconds = spans[column].cast(pa.timestamp("s", tz="UTC")).cast(pa.int64()).to_numpy()
        return seconds / 86_400

    return history_advice(days("event_ts_min"), days("event_ts_max"), SplitParams(), window_days)


def _import_items_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file")
    parser.add_argument("--format", choices=("items", "movielens"), default="items")
    parser.add_argument("--dry-run", action="store_true", help="check the file and show what it holds; write nothing")


def _import_items(args: argparse.Namespace, context: Context) -> int:
    """`import-items FILE`: upsert a catalogue file's postings by id (a re-imported posting replaces its row)."""
    from recsys_assets.domain.event_importer import ImportRejectedError
    from recsys_assets.domain.item_importer import read_items_file

    try:
        items, report = read_items_file(args.file, args.format)
    except ImportRejectedError as exc:
        print(f"import refused: {exc}", file=sys.stderr)
        return 2
    catalogue = context.resources["item_catalogue"]
    summary = (
        f"{report.rows_kept:,} of {report.rows_read:,} items into {catalogue.table_ref} (dropped: {report.dropped()})"
    )
    if args.dry_run:
        print(f"dry run: would import {summary}")
        return 0
    catalogue.replace_items(items)
    print(f"imported {summary}; next: python -m recsys_assets run")
    return 0


SEED = Command("seed", "write synthetic job-board events into the warehouse", synthetic_arguments, _seed)
IMPORT_EVENTS = Command(
    "import-events", "load a CSV/Parquet/MovieLens file into the warehouse", _import_events_arguments, _import_events
)
IMPORT_ITEMS = Command(
    "import-items",
    "load a CSV/Parquet catalogue or MovieLens u.item / movies.csv into the item catalogue",
    _import_items_arguments,
    _import_items,
)
