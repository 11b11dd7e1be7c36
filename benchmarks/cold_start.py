"""Item features and cold start on the synthetic job board: feature cost, cold-item recall, overall NDCG.

Run: `OPENBLAS_NUM_THREADS=1 .venv/bin/python -m benchmarks.cold_start [--postings 100000] [--users 4000 --items 1500]`

1. Features: the scikit-learn pipeline fitted on `--postings` synthetic postings (time, matrix
   memory, peak RSS), and the reloaded transformer applied to 1,000 new postings.
2. Quality (global cut, the gating protocol): the selection over the collaborative families only,
   then over the same families plus `content` and `hybrid`; each choice refitted on the cut's
   training data and scored on the holdout (NDCG@10, cold-item pairs dropped: the main metric), on
   the cold-item holdout (recall@10), and on both together (NDCG@10 with cold pairs as relevant, as
   the search's validation objective counts them).
Figures are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recsys_assets.domain.families.base import rank_users
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.item_features import ItemFeaturizer, fit_features
from recsys_assets.domain.item_side import ItemSource
from recsys_assets.domain.items import as_of, days_since_epoch, generate_catalogue
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import SelectionParams, SplitParams
from recsys_assets.domain.selection import select_model
from recsys_assets.domain.splitting import GLOBAL_CUT, build_training_set
from recsys_assets.domain.synthetic import SyntheticSpec, generate_events

K = 10
COLLABORATIVE = ["popularity", "recent_popularity", "item_knn", "ease", "als"]


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def with_long_text(catalogue: pa.Table, words: int, vocabulary: int, seed: int = 0) -> pa.Table:
    """`catalogue` with `words` Zipf-distributed words of a `vocabulary`-word lexicon added to each description.

    The job board's own text uses a few hundred words; real postings use tens of thousands, which is what
    the TF-IDF cost depends on.
    """
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.2, (catalogue.num_rows, words)), vocabulary) - 1
    lexicon = np.char.add("w", np.arange(vocabulary).astype(str))
    extra = [" ".join(row) for row in lexicon[ranks].tolist()]
    join: Any = pc.binary_join_element_wise
    text = join(catalogue["description"], pa.array(extra), " ")
    return catalogue.set_column(catalogue.schema.get_field_index("description"), "description", text)


def features_cost(postings: int, long_text: bool = False) -> None:
    catalogue = generate_catalogue(SyntheticSpec(n_items=postings, n_users=10, events_per_day=10))
    if long_text:
        catalogue = with_long_text(catalogue, words=150, vocabulary=50_000)
    started = time.perf_counter()
    featurizer, features = fit_features(catalogue)
    seconds = time.perf_counter() - started
    memory = features.data.nbytes + features.indices.nbytes + features.indptr.nbytes
    print(
        f"features ({'150 extra words per posting, 50k-word lexicon' if long_text else 'job-board text'}): {postings:,} postings -> {features.shape[1]:,} features, nnz {features.nnz:,}, "
        f"fit+transform {seconds:.2f} s, matrix {memory / 2**20:.1f} MiB (CSR float32), "
        f"transformer {len(featurizer.to_bytes()) / 2**10:.0f} KiB, peak RSS {peak_rss_gib():.2f} GiB"
    )
    reloaded = ItemFeaturizer.from_bytes(featurizer.to_bytes())
    started = time.perf_counter()
    reloaded.transform(catalogue.slice(0, 1000))
    print(f"reloaded transformer on 1,000 new postings: {time.perf_counter() - started:.3f} s")


def quality(spec: SyntheticSpec, trials: int, budget: float) -> None:
    events, catalogue = generate_events(spec), as_of(generate_catalogue(spec), spec.end_date)
    data = build_training_set(events, SplitParams(), catalogue["item_id"])
    split = data.protocols[GLOBAL_CUT]
    every = split.holdout + split.cold_holdout
    unseen = np.bincount(split.fit.indices, minlength=split.fit.shape[1])[split.validation.indices] == 0
    print(
        f"validation: {int(unseen.sum()):,} of {split.validation.nnz:,} pairs are of postings unseen in the fit "
        "split (counted as relevant by the search)"
    )
    print(
        f"{events.num_rows:,} events -> {data.full.shape[0]:,} users x {data.full.shape[1]:,} items; "
        f"global cut holdout {split.holdout.nnz:,} warm pairs, {split.cold_holdout.nnz:,} cold-item pairs"
    )
    _, features = fit_features(catalogue)
    source = ItemSource(
        features,
        catalogue["item_id"].combine_chunks(),
        days_since_epoch(catalogue["posted_date"]),
        days_since_epoch(catalogue["closed_date"]),
    )
    fit_day, train_day = split.fit_reference_day, split.train_reference_day
    rows = []
    collaborative = None
    for label, families in (
        ("collaborative only", COLLABORATIVE),
        ("with content + hybrid", [*COLLABORATIVE, "content", "hybrid"]),
    ):
        settings = SelectionParams(
            families=families, trials_per_family=trials, time_budget_seconds=budget, num_threads=2
        )
        started = time.perf_counter()
        selection = select_model(split, settings, lambda _m: None, items=source.side(data.item_ids, fit_day))
        best = selection.best
        model = new_model(best.family, best.params, items=source.side(data.item_ids, train_day))
        model.fit(split.train, split.train_ages)
        rank = rank_users(model, split.train, K)
        warm = evaluate(rank, split.holdout, K)[f"ndcg@{K}"]
        cold = evaluate(rank, split.cold_holdout, K)[f"recall@{K}"]
        both = evaluate(rank, every, K)[f"ndcg@{K}"]
        rows.append((label, best.family, warm, cold, both, time.perf_counter() - started))
        chosen = max((t for t in selection.trials if t.state == "complete"), key=lambda t: t.validation_ndcg)
        print(f"{label}: selected {best.family} {best.params} (validation ndcg@{K} {chosen.validation_ndcg:.4f})")
        for family in ("content", "hybrid"):
            tried = [t for t in selection.trials if t.family == family and t.state == "complete"]
            if tried:
                top = max(tried, key=lambda t: t.validation_ndcg)
                alone = new_model(family, top.params, items=source.side(data.item_ids, train_day))
                alone.fit(split.train, split.train_ages)
                r = rank_users(alone, split.train, K)
                rows.append(
                    (
                        f"  best {family} trial",
                        family,
                        evaluate(r, split.holdout, K)[f"ndcg@{K}"],
                        evaluate(r, split.cold_holdout, K)[f"recall@{K}"],
                        evaluate(r, every, K)[f"ndcg@{K}"],
                        0.0,
                    )
                )
        if label == "collaborative only":
            collaborative = best
    assert collaborative is not None
    # A fixed point of the frontier between overall NDCG and cold-item recall, on the best collaborative model.
    for weight, fallback in ((0.9, 0.9), (0.8, 1.0)):
        params = {
            "collaborative": collaborative.family,
            "collaborative_params": collaborative.params,
            "weight": weight,
            "fallback_below": 1,
            "fallback_weight": fallback,
            "recency_half_life_days": 7.0,
        }
        fixed = new_model("hybrid", params, items=source.side(data.item_ids, train_day))
        fixed.fit(split.train, split.train_ages)
        r = rank_users(fixed, split.train, K)
        rows.append(
            (
                f"  fixed hybrid w={weight}, fallback {fallback}, recency 7 d",
                "hybrid",
                evaluate(r, split.holdout, K)[f"ndcg@{K}"],
                evaluate(r, split.cold_holdout, K)[f"recall@{K}"],
                evaluate(r, every, K)[f"ndcg@{K}"],
                0.0,
            )
        )
    print(
        f"\n| selection | family | global_cut ndcg@{K} | cold-item recall@{K} | ndcg@{K} with cold pairs | seconds |"
        "\n|---|---|---|---|---|---|"
    )
    for label, family, warm, cold, both, seconds in rows:
        print(f"| {label} | {family} | {warm:.4f} | {cold:.4f} | {both:.4f} | {seconds:.1f} |")
    print(f"\npeak RSS {peak_rss_gib():.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postings", type=int, default=100_000)
    parser.add_argument("--users", type=int, default=SyntheticSpec.n_users)
    parser.add_argument("--items", type=int, default=SyntheticSpec.n_items)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--budget", type=float, default=300.0)
    args = parser.parse_args()
    features_cost(args.postings)
    features_cost(args.postings, long_text=True)
    quality(
        SyntheticSpec(n_users=args.users, n_items=args.items, n_days=args.days, end_date=date(2026, 11, 28)),
        args.trials,
        args.budget,
    )


if __name__ == "__main__":
    main()
