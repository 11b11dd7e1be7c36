"""Command line: `python -m recsys_assets {demo,run,import-events,seed}`."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from recsys_assets.domain.synthetic import SyntheticSpec, generate_events

if TYPE_CHECKING:
    from recsys_assets.pipeline import PipelineOutcome
    from recsys_assets.resources.warehouse import Warehouse


def _seed(warehouse: Warehouse, spec: SyntheticSpec) -> None:
    events = generate_events(spec)
    days = warehouse.replace_days(events)
    print(f"seeded {events.num_rows:,} synthetic events over {len(days)} days into {warehouse.table_ref}")


def _report(outcome: PipelineOutcome) -> int:
    from recsys_assets.domain.metrics import metrics_table

    if outcome.report:
        report = outcome.report
        print(f"\nCandidates tried (validation on the {report.protocol} protocol, {report.search_seconds:.1f} s):\n")
        print(report.trials_table())
        print(f"\nselected: {report.model.family} {report.model.params}")
    if outcome.evaluation:
        ev = outcome.evaluation
        family = outcome.report.model.family if outcome.report else "model"
        for protocol, result in ev.protocols.items():
            table = {f"model ({family})": result.model, **result.baselines}
            if ev.champion and protocol == ev.protocol:
                table[f"champion {ev.champion.version}"] = ev.champion.metrics
            gate = ", gates the release" if protocol == ev.protocol else ""
            print(
                f"\n{protocol} holdout of partition {outcome.partition_key}: {result.holdout.users:,} users, k={ev.k}{gate}\n"
            )
            print(metrics_table(table))
    for reason in outcome.failures:
        print(f"\n{reason}", file=sys.stderr)
    if outcome.bundle:
        print(f"\nmodel bundle {outcome.bundle.version}: {outcome.bundle.uri}")
    elif outcome.evaluation:
        print("\nno bundle was written (see the failed check above)", file=sys.stderr)
    return 0 if outcome.success else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m recsys_assets", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="seed synthetic data if the warehouse is empty, then run the whole graph")
    seed = commands.add_parser("seed", help="write synthetic job-board events into the warehouse")
    for sub in (demo, seed):
        sub.add_argument("--users", type=int, default=SyntheticSpec.n_users)
        sub.add_argument("--items", type=int, default=SyntheticSpec.n_items)
        sub.add_argument("--days", type=int, default=SyntheticSpec.n_days)
        sub.add_argument("--events-per-day", type=int, default=SyntheticSpec.events_per_day)
        sub.add_argument("--seed", type=int, default=SyntheticSpec.seed)

    run = commands.add_parser("run", help="run the whole graph on what the warehouse holds")
    run.add_argument("--partition", help="YYYY-MM-DD (default: the latest day in the warehouse)")

    imp = commands.add_parser("import-events", help="load a CSV/Parquet/MovieLens file into the warehouse")
    imp.add_argument("file")
    imp.add_argument("--format", choices=("events", "movielens"), default="events")
    imp.add_argument("--min-rating", type=float, help="MovieLens: keep ratings at or above this value")
    imp.add_argument(
        "--max-invalid-share",
        type=float,
        default=0.01,
        help="refuse the file when more than this share of rows is malformed (default 0.01)",
    )
    args = parser.parse_args(argv)

    from recsys_assets.resources import build_resources

    resources = build_resources()
    warehouse = resources["warehouse"]

    if args.command in ("demo", "seed"):
        spec = SyntheticSpec(
            n_users=args.users, n_items=args.items, n_days=args.days, events_per_day=args.events_per_day, seed=args.seed
        )
        if args.command == "seed" or not warehouse_has_data(warehouse):
            _seed(warehouse, spec)
        if args.command == "seed":
            return 0
    if args.command == "import-events":
        from recsys_assets.domain.importer import ImportRejectedError, read_events_file

        try:
            events, report = read_events_file(args.file, args.format, args.min_rating, args.max_invalid_share)
        except ImportRejectedError as exc:
            print(f"import refused: {exc}", file=sys.stderr)
            return 2
        days = warehouse.replace_days(events)
        print(
            f"imported {report.rows_kept:,} of {report.rows_read:,} rows into {len(days)} daily partitions of "
            f"{warehouse.table_ref} (dropped: {report.null_ids} null ids, {report.bad_timestamps} bad timestamps, "
            f"{report.bad_weights} bad weights, {report.below_min_rating} below --min-rating)"
        )
        if days:
            print(f"days {min(days)} .. {max(days)}; next: python -m recsys_assets run")
        return 0

    from recsys_assets.pipeline import latest_partition, materialize_partition

    partition = getattr(args, "partition", None) or latest_partition(warehouse)
    print(f"materializing the graph for partition {partition} ...")
    return _report(materialize_partition(partition, resources))


def warehouse_has_data(warehouse: Warehouse) -> bool:
    from recsys_assets.resources.warehouse import WarehouseUnavailable

    try:
        return bool(warehouse.list_partitions())
    except WarehouseUnavailable:
        return False


if __name__ == "__main__":
    sys.exit(main())
