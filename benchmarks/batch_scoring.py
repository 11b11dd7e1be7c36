"""Batch scoring of the daily served lists, and the outcome of a day's traffic (issue 21).

Run: `.venv/bin/python -m benchmarks.batch_scoring --spec 10m` (200 k users x 30 k items; `--spec 1m` for
30 k x 5 k in a minute or two on a loaded machine).

For ALS, item-kNN and the hybrid (EASE is skipped at 30 k items by the selection anyway), a model is fitted
on the job board's last 28 days and wrapped in an in-memory `Bundle`, exactly as a loaded champion. Then:

- **lists**: `recommend_lists` for every user active in those 28 days (n = 20, the day's closed postings
  excluded, their interactions as history), written to a DuckDB table the way the `recommendations`
  asset writes a day; seconds and the process's peak RSS growth;
- **floor** (ALS): implicit's own batched `model.recommend(userids, user_items[userids], N=20,
  filter_already_liked_items=True)` on the same factors and the same users, in the same run;
- **outcome**: `outcomes` of one day's lists (the ALS ones) against the next day's traffic.

The 1-minute load average is printed beside every figure: the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from threadpoolctl import threadpool_limits

from recsys_assets.domain.events import EVENT_TYPE_WEIGHTS
from recsys_assets.domain.families.base import binary
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.item_features import fit_features
from recsys_assets.domain.item_side import ItemSide
from recsys_assets.domain.items import as_of, days_since_epoch, generate_catalogue
from recsys_assets.domain.outcomes import outcomes
from recsys_assets.domain.served_lists import interaction_matrix, recommend_lists
from recsys_assets.domain.serving import Bundle
from recsys_assets.domain.synthetic import BENCHMARK_SPECS, SMALL_SPEC, generate_events
from recsys_assets.resources.recommendation_store import DuckDBRecommendationStore

SPECS = {**BENCHMARK_SPECS, "small": SMALL_SPEC}
N = 20
ACTIVE_DAYS = 28
FAMILIES = {
    "als": {"factors": 64, "iterations": 10, "num_threads": 0, "random_state": 42},
    "item_knn": {"similarity": "bm25", "neighbours": 100},
    "hybrid": {"collaborative": "item_knn", "collaborative_params": {"neighbours": 100}, "weight": 0.9},
}


def load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", choices=sorted(SPECS), default="10m")
    parser.add_argument("--families", nargs="+", choices=sorted(FAMILIES), default=sorted(FAMILIES))
    args = parser.parse_args()
    spec = SPECS[args.spec]
    started = time.perf_counter()
    events = generate_events(spec)
    catalogue = generate_catalogue(spec)
    day = spec.end_date - timedelta(days=1)  # the lists' day; the last day is the outcome's traffic
    event_day = pc.cast(events["event_ts"], pa.date32())
    window = events.filter(
        pc.and_(
            pc.greater(event_day, pa.scalar(day - timedelta(days=ACTIVE_DAYS), pa.date32())),
            pc.less_equal(event_day, pa.scalar(day, pa.date32())),
        )
    )
    traffic = events.filter(pc.equal(event_day, pa.scalar(spec.end_date, pa.date32())))
    users = pc.unique(window["user_id"]).sort()
    snapshot = as_of(catalogue, day)
    items = snapshot["item_id"].combine_chunks()
    print(
        f"{args.spec}: {events.num_rows:,} events, {len(users):,} active users x {len(items):,} items, "
        f"made in {time.perf_counter() - started:.1f} s (load {load()})"
    )
    matrix = interaction_matrix(users, items, window)
    closed = snapshot.filter(pc.is_valid(snapshot["closed_date"]))["item_id"]
    with tempfile.TemporaryDirectory() as folder:
        store = DuckDBRecommendationStore(path=str(Path(folder) / "warehouse.duckdb"))
        als_lists = None
        for family in args.families:
            side = None
            if family == "hybrid":
                _, features = fit_features(snapshot)
                side = ItemSide(
                    features=features,
                    closed=np.zeros(len(items), bool),
                    posted=days_since_epoch(snapshot["posted_date"]),
                )
            fit_started = time.perf_counter()
            model = new_model(family, FAMILIES[family], items=side).fit(matrix)
            fitted = time.perf_counter() - fit_started
            bundle = Bundle(uri="memory", version=f"bench-{family}", model=model, user_ids=users, item_ids=items)
            bundle.history = binary(matrix)
            bundle.exclude_closed(snapshot)
            rss_before = peak_rss_mib()
            t0 = time.perf_counter()
            lists = recommend_lists(bundle, users, N, day)
            scored = time.perf_counter() - t0
            t1 = time.perf_counter()
            store.replace_day(day, lists)
            written = time.perf_counter() - t1
            print(
                f"| {family} | {len(users):,} users | fit {fitted:.1f} s | lists {scored:.1f} s | DuckDB write "
                f"{written:.1f} s | total {scored + written:.1f} s | peak RSS {peak_rss_mib():,.0f} MiB "
                f"(+{peak_rss_mib() - rss_before:,.0f}) | load {load()} |"
            )
            if family == "als":
                als_lists = lists
                implicit_model = model.model  # pyright: ignore[reportAttributeAccessIssue]
                userids = np.arange(len(users))
                closed_columns = np.flatnonzero(
                    np.asarray(pc.is_in(items, value_set=closed.combine_chunks()).to_numpy(zero_copy_only=False))
                ).astype(np.int32)
                t2 = time.perf_counter()
                # As the family calls it: BLAS on one thread, implicit's own threads doing the work.
                with threadpool_limits(1, "blas"):
                    implicit_model.recommend(
                        userids, matrix[userids], N=N, filter_already_liked_items=True, filter_items=closed_columns
                    )
                floor = time.perf_counter() - t2
                print(
                    f"| als floor (implicit recommend, batched) | lists {floor:.1f} s | ratio {scored / floor:.2f} | load {load()} |"
                )
        if als_lists is not None:
            t3 = time.perf_counter()
            [measured] = outcomes(als_lists, traffic, N, EVENT_TYPE_WEIGHTS)
            print(
                f"| outcome of a day | {traffic.num_rows:,} interactions, {len(users):,} users served | "
                f"{time.perf_counter() - t3:.1f} s | hit rate {measured.hit_rate:.4f} | load {load()} |"
            )


if __name__ == "__main__":
    main()
