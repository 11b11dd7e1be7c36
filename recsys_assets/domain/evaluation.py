"""The offline evaluation: every model scored on one protocol's holdout, and the verdicts that gate a release.

`score_protocol` ranks each model once for the users of the holdout and of the cold-item holdout,
and reads every metric from those lists. `gate` (the model against the baselines) and
`champion_gate` (the model against the promoted champion) are pure verdicts on the evaluation's
numbers: a `Verdict` carries the sentence and the numbers, which the asset checks report.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from recsys_assets.domain.families.base import Recommender, rank_users
from recsys_assets.domain.item_side import new_item_share
from recsys_assets.domain.metrics import evaluate, ranked_once
from recsys_assets.domain.records import EvaluationResult, HoldoutSize, ProtocolResult
from recsys_assets.domain.splitting import ProtocolSplit
from recsys_assets.domain.verdict import Verdict

# The name of the challenger among the scored models (the baselines keep their own names).
MODEL = "model"


def score_protocol(
    split: ProtocolSplit,
    model: Recommender[Any],
    baselines: Mapping[str, Recommender[Any]],
    *,
    k: int,
    posted: np.ndarray,
    new_item_days: int,
    closed: np.ndarray | None = None,
) -> ProtocolResult:
    """`model` and every baseline, trained on `split.train`, scored on its holdout and its cold-item holdout.

    Every model is scored without the postings `closed` (closed at the protocol's cut), and its
    share of slots given to postings under `new_item_days` old (by `posted`, at the train end) is measured.
    """
    models = {MODEL: model, **baselines}
    for each in models.values():
        each.exclude_items(closed)
    holdout, cold = split.holdout, split.cold_holdout
    users = np.flatnonzero(np.diff(holdout.indptr) > 0)
    scored = np.union1d(users, np.flatnonzero(np.diff(cold.indptr) > 0))
    rankers = {
        name: ranked_once(rank_users(each, split.train, k), scored, holdout.shape[0], k)
        for name, each in models.items()
    }
    results = {name: evaluate(rank, holdout, k) for name, rank in rankers.items()}
    # A collaborative model cannot rank an item it never saw: its cold-item metrics are zero by construction.
    cold_results = {name: evaluate(rank, cold, k) for name, rank in rankers.items()}
    shares = {
        name: new_item_share(rank(users), posted, split.train_end, new_item_days) for name, rank in rankers.items()
    }
    return ProtocolResult(
        model=results[MODEL],
        baselines={name: results[name] for name in baselines},
        holdout=HoldoutSize(users=int(results[MODEL]["users_evaluated"]), pairs=int(holdout.nnz)),
        cold_items=cold_results,
        cold_holdout=HoldoutSize(users=int(cold_results[MODEL]["users_evaluated"]), pairs=int(cold.nnz)),
        new_item_share={name: round(value, 4) for name, value in shares.items()},
        new_item_days=new_item_days,
    )


def gate(evaluation: EvaluationResult, lift: float) -> Verdict:
    """Whether the model beats every baseline's NDCG@k on the gating protocol by `lift` (0.05 = 5%)."""
    ndcg = f"ndcg@{evaluation.k}"
    model = evaluation.model[ndcg]
    baselines = {name: metrics[ndcg] for name, metrics in evaluation.baselines.items()}
    required = {name: score * (1 + lift) for name, score in baselines.items()}
    passed = all(model > floor for floor in required.values())
    reasons = ", ".join(f"{name} {baselines[name]:.4f} (needs > {required[name]:.4f})" for name in baselines)
    numbers: dict[str, float | int | str] = {"challenger": round(model, 4), "margin": lift}
    numbers |= {name: round(score, 4) for name, score in baselines.items()}
    numbers |= {f"required_over_{name}": round(floor, 4) for name, floor in required.items()}
    return Verdict(
        passed=passed,
        description=f"{evaluation.protocol}: model {ndcg} {model:.4f} {'beats' if passed else 'does not beat'} "
        f"{reasons} by {lift:.0%}",
        numbers=numbers | {"protocol": evaluation.protocol},
    )


def champion_gate(evaluation: EvaluationResult, tolerance: float) -> Verdict:
    """Whether the model's NDCG@k is within `tolerance` (0.02 = 2%) of the champion's; passed with no champion."""
    ndcg = f"ndcg@{evaluation.k}"
    champion = evaluation.champion
    challenger = evaluation.model[ndcg]
    if evaluation.champion_unavailable or champion is None:
        return Verdict(
            passed=True,
            description=(
                f"comparison with the champion impossible: {evaluation.champion_unavailable}"
                if evaluation.champion_unavailable
                else "no champion promoted yet: the first model is released"
            ),
            numbers={"challenger": round(challenger, 4), "margin": tolerance},
        )
    floor = champion.metrics[ndcg] * (1 - tolerance)
    passed = challenger >= floor
    no_overlap = "; it shares no items with the new data" if evaluation.champion_shared_items == 0 else ""
    return Verdict(
        passed=passed,
        description=(
            f"challenger {ndcg} {challenger:.4f} {'>=' if passed else '<'} floor {floor:.4f} "
            f"(champion {champion.version} {champion.metrics[ndcg]:.4f} - {tolerance:.0%}{no_overlap})"
        ),
        numbers={
            "challenger": round(challenger, 4),
            "champion": round(champion.metrics[ndcg], 4),
            "floor": round(floor, 4),
            "margin": tolerance,
            "champion_version": champion.version,
        },
    )


def champion_comparison(evaluation: EvaluationResult) -> str:
    """One line on how the champion was compared: scored, scored with no overlap, impossible, or none yet."""
    champion = evaluation.champion
    if evaluation.champion_unavailable:
        return f"impossible: {evaluation.champion_unavailable}"
    if champion is None:
        return "no champion promoted yet"
    if evaluation.champion_shared_items == 0:
        return f"champion {champion.version} shares no items with the new data: scored as no overlap (metrics 0)"
    return f"champion {champion.version} scored on {evaluation.champion_shared_items} shared items"
