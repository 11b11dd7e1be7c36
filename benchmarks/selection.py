"""Model selection end to end on the synthetic job board: quality per family and the whole cost.

Run: `.venv/bin/python -m benchmarks.selection [--users 200000 --items 30000 --days 100 --events-per-day 100000]`

Timed (the issue's cost target): search + final fit on both protocols + evaluation of the
selected model and both baselines under both protocols. Not timed: each family's best trial
refitted and scored on its own, to check that the selection is within 3% of the best family.
Figures are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import time
from datetime import UTC, date, datetime

from recsys_assets.domain.event_importer import read_events_file
from recsys_assets.domain.families.base import rank_users
from recsys_assets.domain.families.registry import BASELINES, new_model
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import SelectionParams, SplitParams
from recsys_assets.domain.selection import select_model
from recsys_assets.domain.splitting import PROTOCOLS, ProtocolSplit, build_training_set
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events

K = 10


def peak_rss_gib() -> float:
    """Peak RSS since the last `reset_peak_rss` (Linux VmHWM), else of the whole process."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024**2
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def reset_peak_rss() -> None:
    """Start the peak-RSS count afresh (Linux: writing 5 to clear_refs resets VmHWM)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def holdout_ndcg(split: ProtocolSplit, family: str, params: dict) -> float:
    model = new_model(family, params).fit(split.train, split.train_ages)
    return evaluate(rank_users(model, split.train, K), split.holdout, K)[f"ndcg@{K}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--events-per-day", type=int, default=12000)
    parser.add_argument("--window-days", type=int, default=28)
    parser.add_argument("--trials-per-family", type=int, help="default: SelectionParams'")
    parser.add_argument("--time-budget", type=float, help="default: SelectionParams'")
    parser.add_argument("--protocol", default="global_cut")
    parser.add_argument("--verbose", action="store_true", help="print every trial with its time")
    parser.add_argument("--movielens", help="a MovieLens u.data / ratings.csv instead of the synthetic job board")
    parser.add_argument("--min-rating", type=float, default=4.0, help="MovieLens ratings kept as positives")
    parser.add_argument("--cut-days", type=int, default=SplitParams().cut_days, help="global cut: days held out")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    if args.movielens:
        # Public data is old: nothing is "in the future", and every row is inside the window.
        events, _ = read_events_file(args.movielens, "movielens", args.min_rating, now=datetime(2100, 1, 1, tzinfo=UTC))
    else:
        spec = SyntheticSpec(
            n_users=args.users, n_items=args.items, n_days=args.days, events_per_day=args.events_per_day,
            end_date=date(2026, 11, 28),
        )  # fmt: skip
        events = generate_events(spec)
        window_start = spec.end_date.toordinal() - args.window_days + 1
        days = events["event_ts"].to_numpy().astype("datetime64[D]").astype(int) + date(1970, 1, 1).toordinal()
        events = events.filter(days >= window_start)
    started = time.perf_counter()
    data = build_training_set(events, SplitParams(cut_days=args.cut_days))
    split_seconds = time.perf_counter() - started
    n_events = events.num_rows
    del events  # the selection starts from the training set, as the pipeline's training step does
    gc.collect()
    print(f"generation and training set: peak RSS {peak_rss_gib():.2f} GiB")
    print(f"{n_events:,} events -> {data.full.shape[0]:,} users x {data.full.shape[1]:,} items "
          f"in {split_seconds:.1f}s")  # fmt: skip

    overrides = {"trials_per_family": args.trials_per_family, "time_budget_seconds": args.time_budget}
    settings = SelectionParams(protocol=args.protocol, **{k: v for k, v in overrides.items() if v is not None})
    reset_peak_rss()
    started = time.perf_counter()

    def log(line: str) -> None:
        if args.verbose:
            print(f"  [{time.perf_counter() - started:6.1f}s] {line}", flush=True)

    splits = data.protocols
    log("both protocols' matrices and ages")
    selection = select_model(splits[settings.protocol], settings, log)
    results: dict[str, dict[str, float]] = {}
    for protocol, split in splits.items():
        results[protocol] = {"selected": holdout_ndcg(split, selection.best.family, selection.best.params)}
        log(f"{protocol}: selected model fitted and evaluated")
        for name, (family, params) in BASELINES.items():
            results[protocol][name] = holdout_ndcg(split, family, params)
            log(f"{protocol}: baseline {name} fitted and evaluated")
    total = time.perf_counter() - started
    print(f"selected {selection.best.family} {selection.best.params}")
    print(
        f"selection (search {selection.seconds:.1f}s + fits + evaluation): {total:.1f}s, peak RSS {peak_rss_gib():.2f} GiB, "
        f"load average {os.getloadavg()}"
    )
    print(f"skipped: {selection.skipped or 'none'}; trials: {len(selection.trials)}")

    # Not timed: every family's best trial on its own, on both holdouts.
    best_per_family = {}
    for trial in selection.trials:
        if trial.state == "complete" and trial.validation_ndcg > best_per_family.get(trial.family, (None, -1.0))[1]:
            best_per_family[trial.family] = (trial.params, trial.validation_ndcg)
    print("\n| family | validation ndcg@10 | " + " | ".join(f"{p} holdout ndcg@10" for p in PROTOCOLS) + " |")
    print("|---|---|" + "---|" * len(PROTOCOLS))
    for family, (params, validation) in best_per_family.items():
        scores = [holdout_ndcg(splits[protocol], family, params) for protocol in PROTOCOLS]
        print(f"| {family} | {validation:.4f} | " + " | ".join(f"{s:.4f}" for s in scores) + " |")
        for protocol, score in zip(PROTOCOLS, scores, strict=True):
            results[protocol][f"best {family}"] = score
    print("\n| protocol | selected | popularity | item_knn | best single family | selected / best |")
    print("|---|---|---|---|---|---|")
    for protocol, scores in results.items():
        best = max(v for n, v in scores.items() if n.startswith("best "))
        print(f"| {protocol} | {scores['selected']:.4f} | {scores['popularity']:.4f} | {scores['item_knn']:.4f} | "
              f"{best:.4f} | {scores['selected'] / best:.3f} |")  # fmt: skip
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
