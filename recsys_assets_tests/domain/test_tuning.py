"""The ALS grid search tries every grid point in order and keeps the one with the best validation NDCG."""

import numpy as np
import pytest

from recsys_assets.domain import tuning
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import ALSParams, ALSSearchSpace
from recsys_assets.domain.recommenders import fit_als, ranker
from recsys_assets_tests.domain.test_recommenders import block_matrix

FIXED = {"iterations": 10, "bm25_k1": 0.0, "bm25_b": 0.5, "random_state": 3, "num_threads": 1}


def test_candidates_are_the_grid_in_a_fixed_order_with_the_shared_settings():
    space = ALSSearchSpace(factors=[8, 2], regularization=[0.1, 1.0], alpha=[1.0, 5.0], validation_k=7, **FIXED)
    candidates = list(space.candidates())
    assert [(c.factors, c.regularization, c.alpha) for c in candidates] == [
        (8, 0.1, 1.0), (8, 0.1, 5.0), (8, 1.0, 1.0), (8, 1.0, 5.0),
        (2, 0.1, 1.0), (2, 0.1, 5.0), (2, 1.0, 1.0), (2, 1.0, 5.0),
    ]  # fmt: skip
    for candidate in candidates:
        assert type(candidate) is ALSParams
        assert candidate.model_dump(include=set(FIXED)) == FIXED
    assert len(list(ALSSearchSpace().candidates())) == 3 * 2 * 1  # the defaults: factors x regularization x alpha


@pytest.mark.parametrize("factors", [[1, 6], [6, 1]])
def test_search_picks_the_grid_point_with_the_best_validation_ndcg(factors):
    # Two user groups with disjoint item blocks, validation = one hidden item per user: one factor
    # cannot separate the blocks as well as six (validation ndcg@2 about 0.4 against 0.8).
    fit, validation = block_matrix()
    space = ALSSearchSpace(factors=factors, regularization=[0.01], alpha=[1.0], validation_k=2, **FIXED)
    logged = []
    best, trials = tuning.search_als(fit, validation, space, logged.append)
    assert [trial.params for trial in trials] == list(space.candidates())
    assert all(trial.k == 2 and trial.seconds >= 0 for trial in trials)
    for trial in trials:  # each trial is the validation NDCG of that grid point's model, nothing else
        want = evaluate(ranker(fit_als(fit, trial.params), fit, 2), validation, 2)["ndcg@2"]
        assert trial.validation_ndcg == pytest.approx(want)
    by_factors = {trial.params.factors: trial.validation_ndcg for trial in trials}
    assert by_factors[6] > by_factors[1] + 0.2
    assert best.factors == 6 and best == max(trials, key=lambda t: t.validation_ndcg).params
    assert len(logged) == 2 and "factors=6" in "".join(logged) and "validation ndcg@2" in logged[0]


def test_search_keeps_the_maximum_wherever_it_is_in_the_grid(monkeypatch):
    # A stand-in evaluation whose NDCG peaks at the middle grid point (neither the first nor the last).
    ndcg_by_factors = {2: 0.3, 3: 0.7, 4: 0.5}
    monkeypatch.setattr(tuning, "fit_als", lambda matrix, params: params.factors)
    monkeypatch.setattr(tuning, "ranker", lambda model, seen, k: model)
    monkeypatch.setattr(tuning, "evaluate", lambda rank, relevant, k: {f"ndcg@{k}": ndcg_by_factors[rank]})
    space = ALSSearchSpace(factors=[2, 3, 4], regularization=[0.5], validation_k=5, **FIXED)
    empty = block_matrix()[0][:0]
    best, trials = tuning.search_als(empty, empty, space, lambda message: None)
    assert [t.validation_ndcg for t in trials] == [0.3, 0.7, 0.5]
    assert best.factors == 3 and best.regularization == 0.5 and best.iterations == FIXED["iterations"]
    assert np.argmax([t.validation_ndcg for t in trials]) == 1
