"""Model selection: an Optuna search per family on one protocol's validation split, best score wins.

Each family gets a seeded TPE study with a trial budget. Round 1 runs every family's sound first
points within an equal share of half the time budget; round 2 continues the studies of the better
half of the families (successive halving across families), sharing what is left of the budget;
iterative families (ALS, BPR) report intermediate validation scores so a median pruner can stop
hopeless trials early. Trials are scored on a seeded sample of validation users, so the cost stays
bounded at scale; the selected family and parameters are then refitted by the caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import scipy.sparse as sp

from recsys_assets.domain.bootstrap import paired_lift
from recsys_assets.domain.families.base import HALF_LIVES, Recommender, rank_users
from recsys_assets.domain.families.registry import BASELINES, family_class, new_model
from recsys_assets.domain.item_side import ItemSide
from recsys_assets.domain.metrics import evaluate, ndcg_by_user
from recsys_assets.domain.params import SelectionParams
from recsys_assets.domain.records import ModelSpec, SearchTrial
from recsys_assets.domain.splitting import ProtocolSplit, rolling_folds

Log = Callable[[str], None]
# How many times an iterative trial reports an intermediate score to the pruner.
PRUNING_STEPS = 3
# Share of the search budget of round 1, where every family runs its first points (at least
# FIRST_ROUND_TRIALS; the first whatever it costs); the rest goes to the better half of the families (round 2).
EXPLORATION_SHARE = 0.5
FIRST_ROUND_TRIALS = 2


def sample_users(validation: sp.csr_matrix, limit: int, seed: int) -> sp.csr_matrix:
    """`validation` with only a seeded sample of at most `limit` of its users kept."""
    users = np.flatnonzero(np.diff(validation.indptr) > 0)
    if len(users) <= limit:
        return validation
    keep = np.zeros(validation.shape[0], dtype=np.float32)
    keep[np.random.default_rng(seed).choice(users, size=limit, replace=False)] = 1.0
    return sp.csr_matrix(sp.diags(keep) @ validation)


def search_trial(
    family: str,
    params: dict[str, Any],
    score: float,
    k: int,
    since: float,
    state: str,
    folds: list[float] | None = None,
) -> SearchTrial:
    return SearchTrial.model_validate(
        {
            "family": family,
            "params": params,
            "validation_ndcg": score,
            "k": k,
            "seconds": round(time.perf_counter() - since, 3),
            "state": state,
            "fold_ndcg": [round(score, 6) for score in folds or []],
        }
    )


def tie_rule(folds: int) -> str:
    """The documented rule that picks among candidates within noise of each other."""
    return (
        f"families compared on the mean validation NDCG over {folds} rolling-origin fold(s), each fitted on "
        "the history before it; the best trials not significantly worse than the leader (95% paired bootstrap "
        "over the same validation users) tie, and the tie goes to the one best on the latest fold (fitted on "
        "the most history: the closest to the refit)"
    )


def ran(study: optuna.Study) -> int:
    """Trials a study has run (its enqueued points that have not run yet are trials too, waiting)."""
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
    return len(study.get_trials(deepcopy=False, states=finished))


def span_days(data: ProtocolSplit) -> float:
    """Days the data fitted on covers (its oldest pair's age at the fit's end): what decay half-lives scale with."""
    ages = data.fit_ages
    return max(float(ages.data.max()) if ages.nnz else 1.0, 1.0)


def in_days(params: dict[str, Any], span: float) -> dict[str, Any]:
    """Drawn parameters with the decay's half-life (a fraction of `span`, see HALF_LIVES) in days."""
    fraction = params.get("half_life_days")
    return params if fraction is None else {**params, "half_life_days": round(fraction * span, 1)}


def best_half_life(trials: list[SearchTrial], span: float) -> float | str:
    """The decay (the HALF_LIVES fraction nearest it) of the best completed trial so far; "off" before any."""
    best = max((t for t in trials if t.state == "complete"), key=lambda t: t.validation_ndcg, default=None)
    half_life = None if best is None else best.params.get("half_life_days")
    if half_life is None:
        return "off"
    return min((f for f in HALF_LIVES if f != "off"), key=lambda fraction: abs(float(fraction) * span - half_life))


@dataclass
class Selection:
    best: ModelSpec
    trials: list[SearchTrial]
    skipped: dict[str, str]
    seconds: float
    rule: str = ""
    tied: tuple[str, ...] = ()


def select_model(data: ProtocolSplit, settings: SelectionParams, log: Log, items: ItemSide | None = None) -> Selection:
    """Search every configured family on `data.fit`/`data.validation`; the best validation NDCG@k wins.

    `items` (the item side of the training index at the validation cut) enables the content families
    and gives every family the postings closed at that cut, which none recommends; without it the
    content families are skipped with that reason. A family that blends another (the hybrid) is searched
    last, on the best trial of a family that uses no item features.

    The objective counts every validation pair as relevant, including pairs of postings nobody touched
    in the fit split (cold items: about half of the global cut's validation pairs on the job board).
    A collaborative model misses them by construction, a content or hybrid model can hit them: that is
    what production sees, where new postings are most of what is applied to. The reported holdout
    metrics instead drop cold-item pairs from their main table and report them apart (cold-item table).
    """
    started = time.perf_counter()
    k = settings.k
    validation = sample_users(data.validation, settings.validation_users, settings.seed)
    if data.fit.nnz == 0 or validation.nnz == 0:
        raise ValueError(
            f"the {data.name} protocol leaves {data.fit.nnz:,} fit and {validation.nnz:,} validation pairs: "
            "widen the training window or lower cut_days"
        )
    # Rolling-origin folds beyond the split's own, each shaped like it; a fold left empty is not used.
    share_validated = data.validation.nnz / max(data.fit.nnz + data.validation.nnz, 1)
    folds = [
        fold
        for fold in rolling_folds(data, settings.validation_folds, share_validated)
        if fold.fit.nnz and fold.validation.nnz
    ] or [rolling_folds(data, 1, share_validated)[0]]
    samples = [validation] + [
        sample_users(fold.validation, settings.validation_users, settings.seed) for fold in folds[1:]
    ]
    if len(folds) < settings.validation_folds:
        log(f"{len(folds)} of {settings.validation_folds} validation folds hold data (the history is too short)")
    by_user: dict[int, np.ndarray] = {}  # per-user validation NDCG of every fold, by trial position
    span = span_days(data)
    trials: list[SearchTrial] = []
    scored: dict[str, float] = {}  # validation score of every completed parameter set
    skipped: dict[str, str] = {}
    optuna.logging.set_verbosity(logging.WARNING)
    families = list(dict.fromkeys(settings.families))
    # A blending family builds on the best of the others, so it comes after all of them.
    families = [f for f in families if not family_class(f).blends] + [f for f in families if family_class(f).blends]
    studies: dict[str, optuna.Study] = {}
    deadlines: dict[str, float] = {}

    def objective(trial: optuna.Trial, family: str, blended: tuple[str, dict[str, Any]] | None) -> float:
        params = in_days(family_class(family).params_type.suggest(trial, settings, blended), span)
        key = repr(sorted(params.items()))
        if key in scored:
            # TPE repeats categorical points; the same fit would only cost time.
            return scored[key]
        since = time.perf_counter()
        model = new_model(family, params, items=items)
        iterations = model.iterations
        report_at = {max(1, iterations * step // PRUNING_STEPS) - 1 for step in range(1, PRUNING_STEPS)}

        def on_iteration(iteration: int, fitted: Recommender[Any]) -> None:
            # An iterative fit past the family's share of the budget stops here rather than at its end.
            # The search's first trial always finishes, so there is something to select.
            if time.perf_counter() > deadlines[family] and iteration + 1 < iterations and scored:
                trials.append(search_trial(family, params, 0.0, k, since, "pruned"))
                log(f"{family} trial {trial.number + 1}: {params} stopped at iteration {iteration + 1} (time budget)")
                raise optuna.TrialPruned()
            if iteration in report_at:
                score = evaluate(rank_users(fitted, data.fit, k), validation, k)[f"ndcg@{k}"]
                trial.report(score, iteration)
                if trial.should_prune():
                    trials.append(search_trial(family, params, score, k, since, "pruned"))
                    log(f"{family} trial {trial.number + 1}: {params} pruned at iteration {iteration + 1}")
                    raise optuna.TrialPruned()

        scores, vectors = [], []
        for number, fold in enumerate(folds):
            if number:
                model = new_model(family, params, items=items)
            # Only the latest fold reports to the pruner and stops at the deadline: the others always finish.
            model.fit(fold.fit, fold.fit_ages, callback=on_iteration if iterations and not number else None)
            vectors.append(ndcg_by_user(rank_users(model, fold.fit, k), samples[number], k))
            scores.append(float(vectors[-1].mean()) if len(vectors[-1]) else 0.0)
        score = float(np.mean(scores))
        by_user[len(trials)] = np.concatenate(vectors)
        trials.append(search_trial(family, params, score, k, since, "complete", scores))
        scored[key] = score
        folds_text = f" (folds {', '.join(f'{s:.4f}' for s in scores)})" if len(scores) > 1 else ""
        log(f"{family} trial {trial.number + 1}: {params} -> validation ndcg@{k} {score:.4f}{folds_text}")
        return score

    def run(
        family: str, n_trials: int, share: float, blended: tuple[str, dict[str, Any]] | None, sure: bool = False
    ) -> None:
        """`n_trials` more trials of `family`'s study within `share` seconds; with `sure`, whatever they take.

        The search's first trial always runs, so there is something to select.
        """
        study = studies[family]
        deadlines[family] = float("inf") if sure else time.perf_counter() + share

        def stop_before_overrun(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
            # Optuna's timeout only stops *after* a trial: do not start one the share cannot pay for.
            longest = max((t.duration.total_seconds() for t in study.trials if t.duration is not None), default=0.0)
            if time.perf_counter() + longest > deadlines[family]:
                study.stop()

        study.optimize(
            lambda trial: objective(trial, family, blended),
            n_trials=n_trials,
            # Optuna would start no trial at all on a spent budget; the first trial of a search always runs.
            timeout=share if scored and not sure else None,
            catch=(),
            callbacks=[stop_before_overrun],
        )

    # Round 1: every family's sound first points (its baseline configuration, its first trial with and
    # without the decay that suited the families before it) within an equal share of EXPLORATION_SHARE
    # of the budget, so a slow family is judged on a few trials, not on what cheap families left.
    blends: dict[str, tuple[str, dict[str, Any]] | None] = {}
    for position, family in enumerate(families):
        cls = family_class(family)
        reason = cls.skip_reason(data.fit.shape[1], settings)
        blended = None
        if cls.uses_items and items is None:
            reason = "no item features (the catalogue is empty or was not built)"
        elif cls.blends:
            candidates = [t for t in trials if t.state == "complete" and not family_class(t.family).uses_items]
            best_candidate = max(candidates, key=lambda t: t.validation_ndcg, default=None)
            if best_candidate is None:
                reason = "no collaborative family completed a trial to blend with"
            else:
                # Its full parameter set, defaults included, as the blending model records it.
                spec = ModelSpec(family=best_candidate.family, params=best_candidate.params)
                blended = (spec.family, spec.params)
        if reason is not None:
            skipped[family] = reason
            log(f"{family}: skipped ({reason})")
            continue
        if settings.time_budget_seconds - (time.perf_counter() - started) <= 0 and trials:
            skipped[family] = "the search time budget was spent"
            log(f"{family}: skipped (time budget spent)")
            continue
        studies[family] = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=settings.seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0),
        )
        # The baseline's own configuration is tried first, so the selection never misses what the gate compares with.
        first = [{**BASELINES[family][1], "half_life_days": "off"}] if family in BASELINES else []
        first += cls.params_type.first_trials(best_half_life(trials, span))
        first = [p for n, p in enumerate(first) if p not in first[:n]]
        for point in first:
            studies[family].enqueue_trial(point)
        blends[family] = blended
        # Every family's first point runs whatever it costs (a slow family is judged on at least one
        # trial); the rest of its first points within its share of round 1.
        since = time.perf_counter()
        run(family, 1, 0.0, blended, sure=True)
        remaining = settings.time_budget_seconds * EXPLORATION_SHARE - (since - started)
        share = max(remaining, 0.0) / (len(families) - position) - (time.perf_counter() - since)
        first_round = min(settings.trials_per_family, max(FIRST_ROUND_TRIALS, len(first)))
        if first_round > 1 and share > 0:
            run(family, first_round - 1, share, blended)

    # Round 2, by promise: the better half of the families (by best validation score so far) share
    # what is left of the budget, best first, each continuing its own study up to trials_per_family.
    def best_score(family: str) -> float:
        return max((t.validation_ndcg for t in trials if t.family == family and t.state == "complete"), default=-1.0)

    ranked = sorted((f for f in studies if best_score(f) >= 0), key=best_score, reverse=True)
    promising = [f for f in ranked[: max(1, -(-len(ranked) // 2))] if ran(studies[f]) < settings.trials_per_family]
    if promising:
        log(f"round 2 (by promise): {', '.join(promising)}")
    for position, family in enumerate(promising):
        remaining = settings.time_budget_seconds - (time.perf_counter() - started)
        if remaining <= 0:
            break
        run(
            family,
            settings.trials_per_family - ran(studies[family]),
            remaining / (len(promising) - position),
            blends[family],
        )
    for family, study in studies.items():
        done = sum(1 for t in trials if t.family == family and t.state == "complete")
        if done < settings.trials_per_family:
            log(f"{family}: {done} of {settings.trials_per_family} trials completed ({ran(study)} run)")
    complete = [position for position, t in enumerate(trials) if t.state == "complete"]
    if not complete:
        raise ValueError(f"no family completed a trial ({skipped})")
    # Each family's best trial; those not significantly worse than the leader tie, the latest fold decides.
    best_of: dict[str, int] = {}
    for position in complete:
        family = trials[position].family
        if family not in best_of or trials[position].validation_ndcg > trials[best_of[family]].validation_ndcg:
            best_of[family] = position
    leader = max(best_of.values(), key=lambda position: trials[position].validation_ndcg)
    lifts = {position: paired_lift(by_user[position], by_user[leader]) for position in best_of.values()}
    tied = [position for position in best_of.values() if not lifts[position].significantly_below(0.0)]
    log(
        f"against the leader {trials[leader].family}: "
        + ", ".join(f"{trials[p].family} {lifts[p].text()}" for p in best_of.values() if p != leader)
    )
    chosen = max(tied, key=lambda position: (trials[position].fold_ndcg or [trials[position].validation_ndcg])[0])
    best = trials[chosen]
    if len(tied) > 1:
        log(f"tied within noise: {', '.join(trials[p].family for p in tied)}; the latest fold picks {best.family}")
    log(f"selected {best.family} {best.params}: validation ndcg@{k} {best.validation_ndcg:.4f}")
    return Selection(
        best=ModelSpec(family=best.family, params=best.params),
        trials=trials,
        skipped=skipped,
        seconds=round(time.perf_counter() - started, 3),
        rule=tie_rule(len(folds)),
        tied=tuple(trials[p].family for p in tied),
    )


def holdout_ceiling(
    splits: Mapping[str, ProtocolSplit],
    selection: Selection,
    fitted: Mapping[str, Recommender[Any]],
    k: int,
    seconds: float,
    items_at: Callable[[ProtocolSplit], ItemSide | None],
) -> dict[str, dict[str, float]]:
    """Per protocol, each family's holdout NDCG@k: its best validation trial refitted on the protocol's train.

    The selected family is `fitted` (its refits, by protocol); the other families are fitted in order
    of their validation score while their search trials say a fit fits in `seconds`, so the ceiling a
    selection missed is visible without unbounded cost (a family missing from the result was not measured).
    """
    deadline = time.perf_counter() + seconds
    best: dict[str, SearchTrial] = {}
    for trial in selection.trials:
        if trial.state == "complete" and (
            trial.family not in best or trial.validation_ndcg > best[trial.family].validation_ndcg
        ):
            best[trial.family] = trial
    ceiling: dict[str, dict[str, float]] = {protocol: {} for protocol in splits}
    for protocol, split in splits.items():
        model = fitted[protocol]
        ceiling[protocol][selection.best.family] = evaluate(rank_users(model, split.train, k), split.holdout, k)[
            f"ndcg@{k}"
        ]
    for family, trial in sorted(best.items(), key=lambda pair: -pair[1].validation_ndcg):
        if family == selection.best.family:
            continue
        # One fold's fit and scoring in the search: about what a refit costs, so none starts that would overrun.
        estimate = trial.seconds / max(len(trial.fold_ndcg), 1)
        for protocol, split in splits.items():
            if time.perf_counter() + estimate > deadline:
                break
            model = new_model(family, trial.params, items=items_at(split)).fit(split.train, split.train_ages)
            ceiling[protocol][family] = evaluate(rank_users(model, split.train, k), split.holdout, k)[f"ndcg@{k}"]
    return ceiling
