"""The search tries every configured family, records each trial, skips EASE over its memory budget, and picks the best."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.domain.families.base import HALF_LIVES, rank_users
from recsys_assets.domain.families.registry import new_model
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import SelectionParams
from recsys_assets.domain.records import ModelSpec, SearchTrial, TrainingReport
from recsys_assets.domain.reports import ceiling_table
from recsys_assets.domain.selection import best_half_life, holdout_ceiling, sample_users, select_model, span_days
from recsys_assets.domain.splitting import ProtocolSplit
from recsys_assets_tests.support.families import BLOCK, block_matrix, hand_split, one_day_old


def block_protocol() -> ProtocolSplit:
    train, holdout = block_matrix()
    return hand_split(train, holdout)


def test_selection_records_every_trial_and_picks_a_family_that_finds_the_blocks():
    settings = SelectionParams(families=["popularity", "item_knn", "ease"], trials_per_family=2, num_threads=1)
    logged = []
    selection = select_model(block_protocol(), settings, logged.append)
    assert [t.family for t in selection.trials] == ["popularity"] * 2 + ["item_knn"] * 2 + ["ease"] * 2
    # the baselines' own configurations are tried first
    assert selection.trials[0].params == {"half_life_days": None}
    assert selection.trials[2].params == {"half_life_days": None, "similarity": "bm25", "neighbours": 100}
    assert selection.best.family in ("item_knn", "ease")
    best = max(selection.trials, key=lambda t: t.validation_ndcg)
    assert best.validation_ndcg > max(t.validation_ndcg for t in selection.trials if t.family == "popularity")
    assert any("selected" in line for line in logged)
    # Families are compared on the mean over two rolling-origin folds, the tie rule recorded.
    assert all(len(t.fold_ndcg) == 2 and t.validation_ndcg == pytest.approx(np.mean(t.fold_ndcg), abs=1e-5)
               for t in selection.trials)  # fmt: skip
    assert "2 rolling-origin fold(s)" in selection.rule and "latest fold" in selection.rule
    assert selection.best.family in selection.tied


def test_validation_counts_pairs_of_postings_unseen_in_fit_as_misses_of_a_collaborative_model():
    train, warm = block_matrix()
    n_users, n_items = train.shape
    # One new posting per block that nobody saw in the fit split; every user of the block applies to it.
    fit = sp.csr_matrix(sp.hstack([train, sp.csr_matrix((n_users, 2))]))
    warm = sp.csr_matrix(sp.hstack([warm, sp.csr_matrix((n_users, 2))]))
    users = np.arange(n_users)
    cold = sp.csr_matrix((np.ones(n_users, np.float32), (users, n_items + users // BLOCK)), shape=fit.shape)
    validation = sp.csr_matrix(warm + cold)
    ages = one_day_old(fit)
    protocol = hand_split(fit, validation, holdout=warm, name="global_cut")
    settings = SelectionParams(families=["item_knn"], trials_per_family=1, num_threads=1)
    trial = select_model(protocol, settings, lambda _: None).trials[0]
    rank = rank_users(new_model("item_knn", trial.params).fit(fit, ages), fit, settings.k)
    k = settings.k
    # The cold pairs stay relevant: item-kNN hits every warm pair and none of the cold ones, which lowers its score.
    assert evaluate(rank, warm, k)[f"recall@{k}"] == 1.0 and evaluate(rank, cold, k)[f"recall@{k}"] == 0.0
    # The latest fold is the split's own validation.
    assert trial.fold_ndcg[0] == pytest.approx(evaluate(rank, validation, k)[f"ndcg@{k}"])
    assert trial.fold_ndcg[0] < evaluate(rank, warm, k)[f"ndcg@{k}"] - 0.1


def test_ease_is_skipped_with_its_reason_over_the_memory_budget():
    settings = SelectionParams(families=["popularity", "ease"], trials_per_family=1, ease_memory_fraction=1e-12)
    selection = select_model(block_protocol(), settings, lambda _: None)
    assert "ease" in selection.skipped and "GiB" in selection.skipped["ease"]
    assert {t.family for t in selection.trials} == {"popularity"}


def test_ease_is_skipped_over_its_absolute_budget_however_much_memory_is_free():
    settings = SelectionParams(families=["popularity", "ease"], trials_per_family=1, ease_max_gib=1e-9)
    selection = select_model(block_protocol(), settings, lambda _: None)
    assert "ease_max_gib" in selection.skipped["ease"]


def test_a_spent_time_budget_still_completes_one_trial_then_skips_the_rest_with_the_reason():
    settings = SelectionParams(
        families=["als", "popularity"], trials_per_family=3, time_budget_seconds=1e-6, num_threads=1
    )
    logged = []
    selection = select_model(block_protocol(), settings, logged.append)
    assert [(t.family, t.state) for t in selection.trials] == [("als", "complete")]
    assert selection.best.family == "als" and "time budget" in selection.skipped["popularity"]
    assert any("1 of 3 trials" in line for line in logged)


def test_a_repeated_parameter_set_is_not_fitted_twice():
    settings = SelectionParams(families=["popularity"], trials_per_family=8)
    selection = select_model(block_protocol(), settings, lambda _: None)
    params = [repr(sorted(t.params.items())) for t in selection.trials]
    assert len(params) == len(set(params)) <= len(HALF_LIVES)


def test_validation_users_are_a_seeded_sample():
    validation = sp.csr_matrix(np.eye(50, dtype=np.float32))
    first, again = sample_users(validation, 10, seed=1), sample_users(validation, 10, seed=1)
    assert (np.diff(first.indptr) > 0).sum() == 10 and (first != again).nnz == 0
    assert sample_users(validation, 100, seed=1) is validation


def test_popularity_maps_every_decay_and_later_families_start_from_the_best_one():
    settings = SelectionParams(families=["popularity", "item_knn"], trials_per_family=6, num_threads=1)
    data = block_protocol()
    selection = select_model(data, settings, lambda _: None)
    popularity = [t.params["half_life_days"] for t in selection.trials if t.family == "popularity"]
    # Each a fraction of the days the fit split covers.
    assert popularity == [None] + [round(fraction * span_days(data), 1) for fraction in HALF_LIVES[1:]]
    assert next(t for t in selection.trials if t.family == "item_knn").params["half_life_days"] is None  # the baseline

    def trial(half_life, score, state="complete"):
        return SearchTrial(
            family="popularity",
            params={"half_life_days": half_life},
            validation_ndcg=score,
            k=10,
            seconds=0.1,
            state=state,
        )

    # Half-lives are searched as fractions of the span fitted on: 7 of 28 days is a quarter.
    assert best_half_life([], 28.0) == "off" and best_half_life([trial(None, 0.2), trial(7.0, 0.1)], 28.0) == "off"
    assert best_half_life([trial(None, 0.2), trial(7.0, 0.3), trial(3.0, 0.9, "pruned")], 28.0) == 0.25
    assert best_half_life([trial(None, 0.2), trial(50.0, 0.3)], 200.0) == 0.25


def test_every_family_gets_its_first_points_and_then_the_better_half_shares_the_rest():
    settings = SelectionParams(families=["recent_popularity", "item_knn", "ease"], trials_per_family=5, num_threads=1)
    logged: list[str] = []
    selection = select_model(block_protocol(), settings, logged.append)
    tried = {family: [t for t in selection.trials if t.family == family] for family in settings.families}
    best = {family: max(t.validation_ndcg for t in family_trials) for family, family_trials in tried.items()}
    worst = min(best, key=lambda family: best[family])
    # Round 1 gives each family its two first points; round 2 continues the two best of the three only.
    assert len(tried[worst]) == 2
    assert all(len(family_trials) > 2 for family, family_trials in tried.items() if family != worst)
    assert any(line.startswith("round 2 (by promise): ") and worst not in line for line in logged)


def test_the_ceiling_scores_every_familys_best_trial_on_the_holdout_within_its_time():
    data = block_protocol()
    settings = SelectionParams(families=["popularity", "item_knn"], trials_per_family=2, num_threads=1)
    selection = select_model(data, settings, lambda _: None)
    refit = new_model(selection.best.family, selection.best.params).fit(data.train, data.train_ages)
    ceiling = holdout_ceiling({"per_user": data}, selection, {"per_user": refit}, 10, 60.0, lambda split: None)
    assert set(ceiling["per_user"]) == {"popularity", "item_knn"}
    direct = evaluate(rank_users(refit, data.train, 10), data.holdout, 10)["ndcg@10"]
    assert ceiling["per_user"][selection.best.family] == direct
    # Without time, only the selected model (already fitted) is scored.
    assert set(
        holdout_ceiling({"per_user": data}, selection, {"per_user": refit}, 10, 0.0, lambda s: None)["per_user"]
    ) == {selection.best.family}
    report = TrainingReport(
        model=ModelSpec(family="item_knn", params={}), protocol="per_user", search=[], search_seconds=1.0,
        training_seconds=1.0, users=1, items=1, interactions=1, host="test",
        ceiling={"per_user": {"item_knn": 0.2, "popularity": 0.25}, "global_cut": {"item_knn": 0.3}},
    )  # fmt: skip
    assert report.selected_over_best("per_user") == (0.2, "popularity", 0.25)
    assert ceiling_table(report).splitlines()[2:] == [
        "| per_user | 0.800 (popularity best) | **0.2000** | 0.2500 |",
        "| global_cut | 1.000 (item_knn best) | **0.3000** | - |",
    ]
