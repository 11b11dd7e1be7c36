"""Record builders: a complete version-2 manifest, an evaluation result and registry events, as the project writes them."""

from __future__ import annotations

from recsys_assets.domain.records import (
    ChampionScore,
    EvaluationResult,
    HoldoutSize,
    Lift,
    ProtocolCounts,
    ProtocolResult,
    TrainingSetSummary,
    VersionEvent,
    Window,
)

PARAMS = {"half_life_days": None, "factors": 24, "regularization": 0.3, "alpha": 2.0, "iterations": 7,
          "bm25_k1": 50.0, "bm25_b": 0.5, "random_state": 1, "num_threads": 2}  # fmt: skip


def manifest_v2() -> dict:
    return {
        "schema_version": 2,
        "model_name": "jobs",
        "version": "20260301T000000Z-abc",
        "created_at": "2026-03-01T00:00:00+00:00",
        "code_version": "abc123",
        "image": None,
        "library_versions": {"implicit": "0.7.3"},
        "data": {
            "window": {"start": "2026-02-01", "end": "2026-02-28", "days": 28},
            "partitions": ["20260201", "20260202"],
            "events": 1000,
            "train_pairs": 700,
            "holdout_pairs": 120,
            "full_pairs": 900,
            "users": 50,
            "items": 40,
            "content_hash": "f" * 64,
        },
        "model": {"family": "als", "params": PARAMS},
        "k": 10,
        "holdout_users": 45,
        "metrics": {
            "model": {"ndcg@10": 0.25},
            "baselines": {"popularity": {"ndcg@10": 0.125}},
            "lifts": {
                "popularity": {"users": 45, "model": 0.25, "reference": 0.125, "lift": 1.0, "low": 0.8, "high": 1.2}
            },
        },
        "protocol": "global_cut",
        "protocols": {
            "global_cut": {
                "model": {"ndcg@10": 0.25},
                "baselines": {"popularity": {"ndcg@10": 0.125}},
                "lifts": {},
                "holdout_users": 45,
                "cold_items": {"model": {"recall@10": 0.4}, "popularity": {"recall@10": 0.0}},
                "cold_pairs": 12,
                "new_item_share": {"model": 0.2},
                "new_item_days": 7,
            },
            "per_user": {
                "model": {"ndcg@10": 0.3},
                "baselines": {"popularity": {"ndcg@10": 0.1}},
                "lifts": {},
                "holdout_users": 50,
                "cold_items": {},
                "cold_pairs": 0,
                "new_item_share": {},
                "new_item_days": None,
            },
        },
        "champion": {"version": "20260201T000000Z-def", "metrics": {"ndcg@10": 0.2}},
        "dagster": {"run_id": "run-1", "partition": "2026-02-28"},
        "trained_on": {"model.npz": "the whole window", "evaluated/global_cut.npz": "global_cut train split"},
        "files": {"model.npz": "0" * 64},
    }


def manifest_v1() -> dict:
    """The previous schema: no schema_version, ALS hyperparameters at the top level."""
    raw = manifest_v2()
    del raw["schema_version"], raw["model"], raw["protocol"], raw["protocols"], raw["trained_on"]
    del raw["data"]["full_pairs"], raw["metrics"]["lifts"]
    raw["hyperparameters"] = {k: v for k, v in PARAMS.items() if k != "half_life_days"}
    return raw


def event(version: str, sequence: int, state: str, at: str, pull_request: str | None = None) -> VersionEvent:
    return VersionEvent(
        version=version, sequence=sequence, state=state, at=at, reason="test", pull_request=pull_request
    )  # type: ignore[arg-type]


def metrics(ndcg: float, k: int = 10) -> dict[str, float]:
    """A full metric set (what `metrics.evaluate` returns) whose NDCG@k is `ndcg`."""
    return {f"precision@{k}": ndcg / 2, f"recall@{k}": ndcg, f"ndcg@{k}": ndcg, f"map@{k}": ndcg / 3,
            "coverage": 0.5, "users_evaluated": 40}  # fmt: skip


def summary() -> TrainingSetSummary:
    """A training set's summary.json: 28 days to day 20,000 since the epoch, a 7-day global cut."""
    counts = {"fit_pairs": 500, "validation_pairs": 100, "train_pairs": 600, "holdout_pairs": 150,
              "holdout_users": 40, "unscored_holdout_pairs": 20, "cold_item_pairs": 10}  # fmt: skip
    return TrainingSetSummary(
        events=1000, events_deduplicated=990, pairs_kept=900, users=50, items=40, full_pairs=900,
        end_day=20_000.0, first_day=19_972.0,
        protocols={
            "per_user": ProtocolCounts(**counts, fit_end=20_000.0, train_end=20_000.0),
            "global_cut": ProtocolCounts(**counts, fit_end=19_986.0, train_end=19_993.0),
        },
        window=Window(start="2024-09-09", end="2024-10-06", days=28), partitions=["2024-10-06"], content_hash="f" * 64,
    )  # fmt: skip


def evaluation(
    model: float,
    baselines: dict[str, float],
    champion: float | None = None,
    shared_items: int | None = None,
    unavailable: str | None = None,
    lifts: dict[str, Lift] | None = None,
    champion_lift: Lift | None = None,
    same_as: str | None = None,
) -> EvaluationResult:
    """An evaluation on the global cut whose NDCG@10 are `model`, `baselines` (by name) and `champion`.

    Without `lifts` (paired-bootstrap lifts by baseline) the gates compare the means with no interval.
    """
    result = ProtocolResult(
        model=metrics(model),
        baselines={name: metrics(ndcg) for name, ndcg in baselines.items()},
        holdout=HoldoutSize(users=40, pairs=150),
        lifts=lifts or {},
    )
    return EvaluationResult(
        k=10,
        protocol="global_cut",
        model=result.model,
        baselines=result.baselines,
        champion=None if champion is None else ChampionScore(version="v-champion", metrics=metrics(champion)),
        holdout=result.holdout,
        protocols={"global_cut": result},
        training_set=summary(),
        champion_shared_items=shared_items,
        champion_unavailable=unavailable,
        champion_lift=champion_lift,
        same_as=same_as,
    )
