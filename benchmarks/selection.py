"""Model selection end to end on the synthetic job board: quality per family and the whole cost.

Run: `.venv/bin/python -m benchmarks.selection [--users 200000 --items 30000 --days 100 --events-per-day 100000]`

Timed (the issue's cost target): search + final fit on both protocols + evaluation of the
selected model and both baselines under both protocols. Not timed: each family's best trial
refitted and scored on its own, to check that the selection is within 3% of the best family.
Figures are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from datetime import date

from recsys_assets.domain.families import BASELINES, new_model, rank_users
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import SelectionParams, SplitParams
from recsys_assets.domain.selection import select_model
from recsys_assets.domain.splitting import PROTOCOLS, TrainingSet, build_training_set
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events

K = 10


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def holdout_ndcg(data: TrainingSet, protocol: str, family: str, params: dict) -> float:
    split = data.protocol(protocol)
    model = new_model(family, params).fit(split.train, split.train_ages)
    return evaluate(rank_users(model, split.train, K), split.holdout, K)[f"ndcg@{K}"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--items", type=int, default=1500)
    parser.add_argument("--days", type=int, default=35)
    parser.add_argument("--events-per-day", type=int, default=12000)
    parser.add_argument("--window-days", type=int, default=28)
    parser.add_argument("--trials-per-family", type=int, default=6)
    parser.add_argument("--time-budget", type=float, default=90.0)
    parser.add_argument("--protocol", default="global_cut")
    args = parser.parse_args()
    spec = SyntheticSpec(
        n_users=args.users, n_items=args.items, n_days=args.days, events_per_day=args.events_per_day,
        end_date=date(2026, 11, 28),
    )  # fmt: skip
    print(f"load average before: {os.getloadavg()}")
    events = generate_events(spec)
    window_start = spec.end_date.toordinal() - args.window_days + 1
    days = events["event_ts"].to_numpy().astype("datetime64[D]").astype(int) + date(1970, 1, 1).toordinal()
    events = events.filter(days >= window_start)
    started = time.perf_counter()
    data = build_training_set(events, SplitParams())
    split_seconds = time.perf_counter() - started
    print(f"{events.num_rows:,} events -> {data.train.shape[0]:,} users x {data.train.shape[1]:,} items "
          f"in {split_seconds:.1f}s")  # fmt: skip

    settings = SelectionParams(
        trials_per_family=args.trials_per_family, time_budget_seconds=args.time_budget, protocol=args.protocol
    )
    started = time.perf_counter()
    selection = select_model(data.protocol(settings.protocol), settings, lambda _: None)
    results: dict[str, dict[str, float]] = {}
    for protocol in PROTOCOLS:
        results[protocol] = {"selected": holdout_ndcg(data, protocol, selection.best.family, selection.best.params)}
        for name, (family, params) in BASELINES.items():
            results[protocol][name] = holdout_ndcg(data, protocol, family, params)
    total = time.perf_counter() - started
    print(f"selected {selection.best.family} {selection.best.params}")
    print(
        f"selection (search {selection.seconds:.1f}s + fits + evaluation): {total:.1f}s, peak RSS {peak_rss_gib():.2f} GiB"
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
        scores = [holdout_ndcg(data, protocol, family, params) for protocol in PROTOCOLS]
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
