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

from recsys_assets.domain.bootstrap import paired_lift
from recsys_assets.domain.families.base import Recommender, rank_users
from recsys_assets.domain.item_side import new_item_share
from recsys_assets.domain.metrics import evaluate, ndcg_by_user, ranked_once
from recsys_assets.domain.records import EvaluationResult, HoldoutSize, Lift, ProtocolResult
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
) -> tuple[ProtocolResult, np.ndarray]:
    """`model` and every baseline, trained on `split.train`, scored on its holdout and its cold-item holdout.

    Returns the result (with the model's paired lift over each baseline) and the model's NDCG@k per
    holdout user, in row order, against which the caller pairs the champion's. Every model is scored without the postings `closed` (closed at the protocol's cut), and its
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
    by_user = {name: ndcg_by_user(rank, holdout, k) for name, rank in rankers.items()}
    # A collaborative model cannot rank an item it never saw: its cold-item metrics are zero by construction.
    cold_results = {name: evaluate(rank, cold, k) for name, rank in rankers.items()}
    shares = {
        name: new_item_share(rank(users), posted, split.train_end, new_item_days) for name, rank in rankers.items()
    }
    result = ProtocolResult(
        model=results[MODEL],
        baselines={name: results[name] for name in baselines},
        holdout=HoldoutSize(users=int(results[MODEL]["users_evaluated"]), pairs=int(holdout.nnz)),
        cold_items=cold_results,
        cold_holdout=HoldoutSize(users=int(cold_results[MODEL]["users_evaluated"]), pairs=int(cold.nnz)),
        new_item_share={name: round(value, 4) for name, value in shares.items()},
        new_item_days=new_item_days,
        lifts={name: paired_lift(by_user[MODEL], by_user[name]) for name in baselines},
    )
    return result, by_user[MODEL]


def point_lift(model: float, reference: float, users: int) -> Lift:
    """The lift of two mean scores with no interval: what an evaluation without per-user scores can say."""
    if reference <= 0:
        return Lift(users=users, model=model, reference=reference)
    lift = model / reference - 1
    return Lift(users=users, model=model, reference=reference, lift=lift, low=lift, high=lift)


def baseline_lifts(evaluation: EvaluationResult) -> dict[str, Lift]:
    """The model's lift over each baseline on the gating protocol (point lifts where no interval was recorded)."""
    ndcg = f"ndcg@{evaluation.k}"
    recorded = evaluation.protocols[evaluation.protocol].lifts if evaluation.protocol in evaluation.protocols else {}
    return {
        name: recorded.get(name)
        or point_lift(evaluation.model[ndcg], metrics[ndcg], int(evaluation.model.get("users_evaluated", 0)))
        for name, metrics in evaluation.baselines.items()
    }


def gate(evaluation: EvaluationResult, min_relative_lift: float | None, tolerance: float) -> Verdict:
    """Whether the model is not significantly worse than any baseline by more than `tolerance` (0.02 = 2%).

    Significantly: the 95% interval of its paired lift lies wholly below -`tolerance`. With
    `min_relative_lift` set, the interval must also lie wholly above it ("significantly better by").
    A model that is a baseline's configuration is not compared with that baseline.
    """
    ndcg = f"ndcg@{evaluation.k}"
    lifts = baseline_lifts(evaluation)
    compared = {name: lift for name, lift in lifts.items() if name != evaluation.same_as}
    worse = [name for name, lift in compared.items() if lift.significantly_below(-tolerance)]
    short = (
        []
        if min_relative_lift is None
        else [name for name, lift in compared.items() if not lift.significantly_above(min_relative_lift)]
    )
    passed = not worse and not short
    users = max((lift.users for lift in lifts.values()), default=evaluation.holdout.users)
    model = evaluation.model[ndcg]
    listed = ", ".join(
        f"{name} {lift.reference:.4f}: {lift.text()}"
        + (" (the model's own configuration: not gated)" if name == evaluation.same_as else "")
        for name, lift in lifts.items()
    )
    if worse:
        outcome = f"significantly worse than {', '.join(worse)} by more than the {tolerance:.0%} tolerance"
    elif short:
        outcome = f"not significantly more than {min_relative_lift:.0%} better than {', '.join(short)}"
    else:
        outcome = f"not significantly worse than any baseline by more than {tolerance:.0%}"
        if min_relative_lift is not None:
            outcome += f", and significantly more than {min_relative_lift:.0%} better than each"
    numbers: dict[str, float | int | str] = {
        "challenger": round(model, 4),
        "users": users,
        "tolerance": tolerance,
        "min_relative_lift": "off" if min_relative_lift is None else min_relative_lift,
        "protocol": evaluation.protocol,
        "same_as": evaluation.same_as or "none",
    }
    for name, lift in lifts.items():
        numbers[name] = round(lift.reference, 4)
        if lift.lift is not None and lift.low is not None and lift.high is not None:
            numbers |= {
                f"lift_over_{name}": round(lift.lift, 4),
                f"lift_low_{name}": round(lift.low, 4),
                f"lift_high_{name}": round(lift.high, 4),
            }
    return Verdict(
        passed=passed,
        description=f"{evaluation.protocol}, {users:,} users: model {ndcg} {model:.4f}, lift (95% interval) over "
        f"{listed}: {outcome}",
        numbers=numbers,
    )


def champion_gate(evaluation: EvaluationResult, tolerance: float) -> Verdict:
    """Whether the model is not significantly worse than the champion by more than `tolerance` (0.02 = 2%).

    Significantly: the 95% interval of the paired lift over the champion lies wholly below -`tolerance`.
    Passed with no champion, or one that cannot be read.
    """
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
    lift = evaluation.champion_lift or point_lift(
        challenger, champion.metrics[ndcg], int(evaluation.model.get("users_evaluated", 0))
    )
    passed = not lift.significantly_below(-tolerance)
    no_overlap = "; it shares no items with the new data" if evaluation.champion_shared_items == 0 else ""
    verdict = "not significantly worse" if passed else "significantly worse"
    numbers: dict[str, float | int | str] = {
        "challenger": round(challenger, 4),
        "champion": round(champion.metrics[ndcg], 4),
        "margin": tolerance,
        "users": lift.users,
        "champion_version": champion.version,
    }
    if lift.lift is not None and lift.low is not None and lift.high is not None:
        numbers |= {"lift": round(lift.lift, 4), "lift_low": round(lift.low, 4), "lift_high": round(lift.high, 4)}
    return Verdict(
        passed=passed,
        description=(
            f"challenger {ndcg} {challenger:.4f} against champion {champion.version} {champion.metrics[ndcg]:.4f}: "
            f"lift {lift.text()} (95% interval, {lift.users:,} users), {verdict} than the champion by more than "
            f"{tolerance:.0%}{no_overlap}"
        ),
        numbers=numbers,
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
