"""Every model family runs one contract (`FamilyContract`, implicit's test-mixin style), plus its own known answers.

A new family is one class here: `class TestX(FamilyContract)` with its `family` name and small `params`
(and, where the contract's expectations do not apply, the flag that says why).
"""

from datetime import date, timedelta
from typing import Any, ClassVar

import numpy as np
import optuna
import pyarrow as pa
import pytest
import scipy.sparse as sp

from recsys_assets.domain.families import popularity
from recsys_assets.domain.families.base import FamilyParams, Recommender, binary, decayed, rank_users
from recsys_assets.domain.families.content import ContentParams
from recsys_assets.domain.families.ease import EASE, EASEParams, ease_memory_bytes
from recsys_assets.domain.families.factors import ALSParams, BPRParams
from recsys_assets.domain.families.hybrid import HybridParams
from recsys_assets.domain.families.item_knn import ItemKNNParams
from recsys_assets.domain.families.popularity import PopularityParams, RecentPopularityParams
from recsys_assets.domain.families.registry import FAMILIES, FAMILY_CLASSES, Family, family_class, load_model, new_model
from recsys_assets.domain.item_features import ItemFeaturizer, fit_features
from recsys_assets.domain.metrics import evaluate
from recsys_assets.domain.params import SelectionParams
from recsys_assets.domain.serving import Bundle
from recsys_assets_tests.support.catalogue import D, catalogue, side_of
from recsys_assets_tests.support.families import ages_like, block_items, block_matrix, own_block_unseen, small_matrix

# Six postings; job1 closes. Users 3 and 5 have not seen it, and every family ranks it for them:
# it shares users with what they saw (item-kNN, EASE, factors), it is among the most popular, and
# it is a backend posting like job0 (content).
CLOSING = 1
SHARED = sp.csr_matrix(
    np.array(
        [
            [1, 1, 0, 1, 0, 0],
            [1, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 1, 0],
            [0, 0, 0, 1, 1, 0],
            [0, 1, 0, 0, 1, 0],
            [1, 0, 0, 0, 0, 0],
        ],
        dtype=np.float32,
    )
)


class FamilyContract:
    """What every family does: personal lists, filtering, padding, save/load, fold-in, closed postings, clean input."""

    family: ClassVar[Family]
    # Small settings that fit the matrices below in milliseconds.
    params: ClassVar[FamilyParams]
    # Ranks each user's own block of the block matrix first (a personalised model).
    personalised: ClassVar[bool] = True
    # Scores every item, so a user's unseen items fill the top of their list.
    scores_every_item: ClassVar[bool] = True
    # Reads confidence values (rather than only which items were seen), so non-finite ones are refused.
    reads_confidences: ClassVar[bool] = True

    def new(self, matrix: sp.csr_matrix, closed: np.ndarray | None = None) -> Recommender[Any]:
        items = block_items(matrix.shape[1], closed) if family_class(self.family).uses_items else None
        return new_model(self.family, self.params, items=items)

    def fitted(self, matrix: sp.csr_matrix) -> Recommender[Any]:
        return self.new(matrix).fit(matrix, ages_like(matrix))

    def test_recommends_each_users_own_block(self):
        if not self.personalised:
            pytest.skip(f"{self.family} is not personalised")
        train, holdout = block_matrix()
        model = self.fitted(train)
        recs = rank_users(model, train, k=2)(np.arange(train.shape[0]))
        for user in range(train.shape[0]):
            assert set(recs[user].tolist()) == own_block_unseen(user), f"user {user}: {recs[user]}"
        assert evaluate(rank_users(model, train, 2), holdout, 2)["recall@2"] == 1.0

    def test_lists_filter_seen_items_pad_with_minus_one_and_survive_save_load(self):
        matrix = small_matrix()
        model = self.fitted(matrix)
        recs = rank_users(model, matrix, k=7)(np.array([0, 1]))
        assert recs.shape == (2, 7) and recs.dtype == np.int64
        for user, row in enumerate(recs.tolist()):
            real = [item for item in row if item >= 0]
            assert not set(real) & set(matrix[user].indices.tolist())
            assert len(set(real)) == len(real) and row == real + [-1] * (7 - len(real))
        if self.scores_every_item:
            assert sorted(recs[0][:2].tolist()) == [3, 4] and sorted(recs[1][:3].tolist()) == [0, 1, 4]
        loaded = load_model(self.family, model.params.model_dump(), model.to_bytes())
        np.testing.assert_array_equal(
            rank_users(loaded, matrix, 7)(np.arange(3)), rank_users(model, matrix, 7)(np.arange(3))
        )

    def test_unknown_users_are_folded_in_from_their_history_or_get_empty_lists(self):
        train, _ = block_matrix()
        model = self.fitted(train)
        folded = rank_users(model, train, k=2, known_users=False)(np.arange(train.shape[0]))
        if not model.folds_in:
            assert (folded == -1).all()  # says so, rather than recommending someone else's list
        elif self.personalised:
            assert [set(row) for row in folded.tolist()] == [own_block_unseen(u) for u in range(train.shape[0])]
        else:
            assert (folded >= 0).all()

    def test_a_closed_posting_is_never_recommended_offline_or_served(self):
        day = float((D - date(1970, 1, 1)).days)
        items = catalogue(closed={CLOSING: D + timedelta(days=2)})
        side = side_of(items, reference_day=day + 2)
        assert side.closed.tolist() == [False, True, False, False, False, False]
        model = new_model(self.family, self.params, items=side).fit(SHARED, ages_like(SHARED))
        # The same fitted model without the mask: the known answer is its full lists minus job1.
        unmasked = load_model(self.family, model.params.model_dump(), model.to_bytes()).exclude_items(None)
        users = np.arange(SHARED.shape[0])
        before = rank_users(unmasked, SHARED, 6)(users)
        assert CLOSING in before[[3, 5]], f"{self.family} never ranked job1: the test would prove nothing"
        after = rank_users(model, SHARED, 6)(users)
        assert CLOSING not in after
        if not family_class(self.family).blends:
            expected = [[i for i in row if i != CLOSING] + [-1] * int(CLOSING in row) for row in before.tolist()]
            assert after.tolist() == expected
        else:  # the fused ranks move when a candidate leaves both lists; its set does not
            assert [set(a) - {-1} for a in after.tolist()] == [set(b) - {-1, CLOSING} for b in before.tolist()]
        if model.folds_in:
            assert CLOSING not in rank_users(model, SHARED, 6, known_users=False)(users)
        # Served: the bundle's model carries the mask, also after postings are added from their features.
        featurizer, _ = fit_features(items)
        bundle = Bundle(
            uri="memory",
            version="v1",
            model=load_model(self.family, model.params.model_dump(), model.to_bytes()),
            user_ids=pa.array([f"u{u}" for u in users]),
            item_ids=items["item_id"].combine_chunks(),
            featurizer=ItemFeaturizer.from_bytes(featurizer.to_bytes()),
        )
        served = [bundle.recommend(f"u{u}", [f"job{i}" for i in SHARED[u].indices], n=6) for u in users]
        assert served == [[f"job{i}" for i in row if i >= 0] for row in after.tolist()]
        assert "job1" not in bundle.recommend("someone-new", ["job0"], n=6)
        if family_class(self.family).uses_items:
            new = catalogue().set_column(0, "item_id", pa.array([f"new{i}" for i in range(6)]))
            assert bundle.add_postings(new) == 6
            recommended = bundle.recommend("u3", ["job3", "job4"], n=12)
            assert "job1" not in recommended and {f"new{i}" for i in range(6)} <= set(recommended)
        else:
            with pytest.raises(ValueError, match="cannot score new postings"):
                bundle.add_postings(catalogue().set_column(0, "item_id", pa.array([f"new{i}" for i in range(6)])))

    @pytest.mark.parametrize("bad", [np.inf, np.nan])
    def test_training_refuses_non_finite_confidences(self, bad):
        if not self.reads_confidences:
            pytest.skip(f"{self.family} reads only which items were seen")
        matrix = sp.csr_matrix(np.array([[1.0, bad, 0.0], [0.0, 1.0, 1.0]], dtype=np.float32))
        with pytest.raises(ValueError, match="1 of 4 confidences are not finite"):
            self.new(matrix).fit(matrix)

    def test_search_space_yields_valid_parameters_and_fixes_every_first_trial_key(self):
        cls = family_class(self.family)
        settings = SelectionParams(seed=3, num_threads=1)
        blended = ("item_knn", {"neighbours": 10}) if cls.blends else None
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
        for _ in range(3):
            trial = study.ask()
            params = cls.params_type.suggest(trial, settings, blended)
            assert new_model(self.family, params, items=block_items(12)).params == cls.params_type(**params)
            for point in cls.params_type.first_trials("off"):
                assert set(point) <= set(trial.params), f"{point} sets parameters the search never draws"
            study.tell(trial, 0.0)


class TestPopularity(FamilyContract):
    family = "popularity"
    params = PopularityParams()
    personalised = False
    reads_confidences = False

    @pytest.mark.parametrize("block_cells", [20_000_000, 40])
    def test_lists_are_the_full_sort_of_its_scores_minus_seen_items(self, monkeypatch, block_cells):
        monkeypatch.setattr(popularity, "SCORE_BLOCK_CELLS", block_cells)  # many small blocks, one per heavy user
        rng = np.random.default_rng(5)
        dense = (rng.random((300, 40)) < 0.3).astype(np.float32)
        dense[7] = 1.0  # a user who saw everything gets an empty list
        matrix = sp.csr_matrix(dense)
        model = new_model("popularity").fit(matrix)
        scores_of = model.arrays()["item_scores"]
        scores_of[:10] = np.float32(rng.integers(0, 3))  # ties are broken by item index
        lists = model.recommend(np.arange(300), matrix, 12)
        for user in range(300):
            scores = scores_of.copy()
            scores[matrix[user].indices] = -np.inf
            order = np.lexsort((np.arange(40), -scores))
            expected = [i for i in order if np.isfinite(scores[i])][:12]
            assert lists[user].tolist() == expected + [-1] * (12 - len(expected))
        assert (lists[7] == -1).all()

    def test_decay_reorders_it(self):
        # item 0: three users long ago (age 50 days); item 1: two users yesterday; user 4 has seen nothing
        matrix, ages = recent_and_old()
        newcomer = np.array([4])
        all_time = new_model("popularity").fit(matrix, ages)
        assert rank_users(all_time, matrix, 2)(newcomer)[0].tolist() == [0, 1]
        decaying = new_model("popularity", {"half_life_days": 7.0}).fit(matrix, ages)
        assert rank_users(decaying, matrix, 2)(newcomer)[0].tolist() == [1, 0]


class TestRecentPopularity(FamilyContract):
    family = "recent_popularity"
    params = RecentPopularityParams(days=100.0)
    personalised = False
    reads_confidences = False

    def test_counts_only_the_last_days(self):
        matrix, ages = recent_and_old()
        recent = new_model("recent_popularity", {"days": 7.0}).fit(matrix, ages)
        np.testing.assert_array_equal(recent.arrays()["item_scores"], [0, 2, 0])
        with pytest.raises(ValueError, match="needs the interactions' ages"):
            new_model("recent_popularity").fit(matrix)


class TestItemKNN(FamilyContract):
    family = "item_knn"
    params = ItemKNNParams(neighbours=10)
    # It scores only items that share a user with the history.
    scores_every_item = False


class TestEASE(FamilyContract):
    family = "ease"
    params = EASEParams(regularization=1.0)

    def test_matches_the_closed_form_with_lambda_relative_to_the_mean_gram_diagonal(self):
        matrix = small_matrix()
        model = new_model("ease", {"regularization": 2.0}).fit(matrix)
        x = matrix.toarray().astype(np.float64)
        gram = x.T @ x
        p = np.linalg.inv(gram + 2.0 * np.diag(gram).mean() * np.eye(5))
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        np.testing.assert_allclose(model.arrays()["weights"], b, rtol=1e-4, atol=1e-5)

    def test_the_same_regularization_means_the_same_whatever_the_confidences_scale(self):
        # Ratings 4-5 instead of ones: the Gram matrix grows ~20x, and the fitted weights do not change.
        matrix = small_matrix()
        scaled = matrix * 4.5
        weights = [new_model("ease", {"regularization": 1.0}).fit(m).arrays()["weights"] for m in (matrix, scaled)]
        np.testing.assert_allclose(weights[0], weights[1], rtol=1e-4, atol=1e-5)

    def test_is_skipped_over_its_memory_budget_with_the_numbers(self):
        assert ease_memory_bytes(30_000) == 4 * 4 * 30_000**2
        assert EASE.skip_reason(100, SelectionParams()) is None
        over = EASE.skip_reason(30_000, SelectionParams(ease_max_gib=2.0))
        assert over == "30,000 items need ~13.4 GiB (4 x items² float32), over the 2 GiB EASE budget (ease_max_gib)"
        share = EASE.skip_reason(100, SelectionParams(ease_memory_fraction=1e-12))
        assert share is not None and share.startswith("100 items need ~0.0 GiB") and "of the" in share


class TestALS(FamilyContract):
    family = "als"
    params = ALSParams(factors=4, regularization=0.01, iterations=10, num_threads=1, random_state=0)


class TestBPR(FamilyContract):
    family = "bpr"
    params = BPRParams(factors=4, iterations=50, learning_rate=0.05, num_threads=1, random_state=0)
    # A pairwise model on a dozen users does not find the blocks reliably; it is a weak default here too.
    personalised = False


class TestContent(FamilyContract):
    family = "content"
    params = ContentParams()


class TestHybrid(FamilyContract):
    family = "hybrid"
    params = HybridParams(collaborative="item_knn", weight=0.7)

    def test_blends_only_a_family_without_item_features(self):
        for collaborative in ("content", "hybrid"):
            with pytest.raises(ValueError, match="blends a collaborative family"):
                new_model("hybrid", {"collaborative": collaborative}, items=block_items(12))


def recent_and_old() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Item 0: three users long ago (age 50 days); item 1: two users yesterday; user 4 has seen nothing."""
    matrix = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32))
    ages = sp.csr_matrix(np.array([[50, 0, 0], [50, 0, 0], [50, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32))
    return matrix, ages


def test_every_family_runs_the_contract():
    assert {cls.family for cls in FamilyContract.__subclasses__()} == set(FAMILIES)


def test_the_family_names_and_the_registry_agree():
    assert tuple(FAMILY_CLASSES) == FAMILIES
    assert all(cls.family == name for name, cls in FAMILY_CLASSES.items())
    assert set(SelectionParams().families) <= set(FAMILIES)
    with pytest.raises(ValueError, match="unknown family 'svd'"):
        family_class("svd")


def test_content_families_need_item_features():
    for family in FAMILIES:
        if family_class(family).uses_items:
            with pytest.raises(ValueError, match="needs item features"):
                new_model(family, {})


def test_time_decay_halves_confidence_per_half_life_and_off_leaves_it():
    matrix = sp.csr_matrix(np.array([[2.0, 4.0]], dtype=np.float32))
    ages = sp.csr_matrix(np.array([[10.0, 20.0]], dtype=np.float32))
    assert decayed(matrix, ages, None) is matrix
    np.testing.assert_allclose(decayed(matrix, ages, 10.0).toarray(), [[1.0, 1.0]])


def test_binary_history_ignores_confidence_and_explicit_zeros():
    matrix = sp.csr_matrix((np.array([3.0, 0.0], np.float32), np.array([0, 1]), np.array([0, 2])), shape=(1, 2))
    assert binary(matrix).toarray().tolist() == [[1.0, 0.0]] and binary(matrix).nnz == 1
