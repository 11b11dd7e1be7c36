"""Throughput of the vectorised steps at production-like size (10 million events).

Run: `.venv/bin/python -m benchmarks.scale [--events-per-day 100000 --days 100]`
Figures measured on the 2-core / 24 GiB development machine are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date

from recsys_assets.domain.families.base import rank_users
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import SplitParams
from recsys_assets.domain.splitting import PER_USER, build_training_set
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def timed(label: str, fn):
    started = time.perf_counter()
    value = fn()
    print(f"{label:42s} {time.perf_counter() - started:7.2f}s   peak RSS {peak_rss_gib():5.2f} GiB")
    return value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=30_000)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--events-per-day", type=int, default=100_000)
    args = parser.parse_args()
    spec = SyntheticSpec(
        n_users=args.users,
        n_items=args.items,
        n_days=args.days,
        events_per_day=args.events_per_day,
        end_date=date(2026, 6, 30),
    )
    events = timed(f"generate {args.days * args.events_per_day:,} events", lambda: generate_events(spec))
    params = SplitParams()
    data = timed(f"training set from {events.num_rows:,} events", lambda: build_training_set(events, params))
    split = data.protocols[PER_USER]
    print(f"  {split.train.shape[0]:,} users x {split.train.shape[1]:,} items, {split.train.nnz:,} training pairs")
    model = timed(
        "ALS fit (64 factors, 15 iterations)",
        lambda: new_model("als", {"factors": 64, "regularization": 0.1, "alpha": 1.0}).fit(split.train),
    )
    knn = timed("item-kNN fit (BM25, 100 neighbours)", lambda: new_model("item_knn").fit(split.train))
    popularity = new_model("popularity").fit(split.train)
    for name, m in (("ALS", model), ("popularity", popularity), ("item-kNN", knn)):
        # Bound now: the lambda runs inside this iteration.
        rank = rank_users(m, split.train, 10)
        metrics = timed(
            f"evaluate {name} (all holdout users, k=10)", lambda rank=rank: evaluate(rank, split.holdout, 10)
        )
        print(f"  {name}: ndcg@10 {metrics['ndcg@10']:.4f} over {metrics['users_evaluated']:,} users")


if __name__ == "__main__":
    main()
