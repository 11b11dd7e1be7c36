"""Hyperparameter search: pick ALS parameters by their ranking quality on the validation split."""

from __future__ import annotations

import time
from collections.abc import Callable

import scipy.sparse as sp

from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import ALSParams, ALSSearchSpace
from recsys_assets.domain.recommenders import fit_als, ranker
from recsys_assets.domain.records import SearchTrial


def search_als(
    fit: sp.csr_matrix, validation: sp.csr_matrix, space: ALSSearchSpace, log: Callable[[str], None]
) -> tuple[ALSParams, list[SearchTrial]]:
    """The grid point with the best validation NDCG@k (never the holdout), and every trial."""
    k = space.validation_k
    trials = []
    for params in space.candidates():
        started = time.perf_counter()
        ndcg = evaluate(ranker(fit_als(fit, params), fit, k), validation, k)[f"ndcg@{k}"]
        trials.append(
            SearchTrial(params=params, validation_ndcg=ndcg, k=k, seconds=round(time.perf_counter() - started, 3))
        )
        log(
            f"search trial {len(trials)}: factors={params.factors} regularization={params.regularization} "
            f"alpha={params.alpha} -> validation ndcg@{k} {ndcg:.4f}"
        )
    best = max(trials, key=lambda trial: trial.validation_ndcg)
    return best.params, trials
