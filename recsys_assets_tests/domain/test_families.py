"""Every candidate family on a small fixed matrix: known answers, filtering, padding, time decay, save/load."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.domain import families
from recsys_assets.domain.families import (
    CONTENT_FAMILIES,
    FAMILIES,
    binary,
    decayed,
    ease_memory_bytes,
    load_model,
    new_model,
    rank_users,
)
from recsys_assets.domain.metrics import evaluate

BLOCK = 6  # items per block and users per group


def block_matrix() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Two user groups, each liking its own block of 6 items (a checkerboard of two blocks).

    User j of group g has not seen items j and j+1 (mod 6) of its block: item j is held out,
    item j+1 is simply unseen. Every user saw the 4 other items of its block and nothing else.
    """
    rows, cols, hidden = [], [], []
    for group in range(2):
        for j in range(BLOCK):
            user = group * BLOCK + j
            for i in range(BLOCK):
                if i not in (j, (j + 1) % BLOCK):
                    rows.append(user)
                    cols.append(group * BLOCK + i)
            hidden.append(group * BLOCK + j)
    n = 2 * BLOCK
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n))
    holdout = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), hidden)), shape=(n, n))
    return train, holdout


def own_block_unseen(user: int) -> set[int]:
    group, j = divmod(user, BLOCK)
    return {group * BLOCK + j, group * BLOCK + (j + 1) % BLOCK}


def small_matrix() -> sp.csr_matrix:
    """5 items; user 0 saw {0, 1, 2}, user 1 saw {2, 3}, user 2 saw {0, 3, 4}.

    Every unseen item of users 0 and 1 shares a user with something they saw, so item-kNN scores it too.
    """
    return sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 0], [1, 0, 0, 1, 1]], dtype=np.float32))


SMALL = {
    "popularity": {},
    "recent_popularity": {"days": 100.0},
    "item_knn": {"neighbours": 10},
    "ease": {"regularization": 1.0},
    "als": {"factors": 4, "regularization": 0.01, "iterations": 10, "num_threads": 1, "random_state": 0},
    "bpr": {"factors": 4, "iterations": 200, "learning_rate": 0.05, "num_threads": 1, "random_state": 0},
}
PERSONALISED = ["item_knn", "ease", "als"]
# The content families need item features: test_content.py covers them on a tiny catalogue.
COLLABORATIVE = [family for family in FAMILIES if family not in CONTENT_FAMILIES]


def ages_like(matrix: sp.csr_matrix, age: float = 1.0) -> sp.csr_matrix:
    return sp.csr_matrix((np.full(matrix.nnz, age, np.float32), matrix.indices, matrix.indptr), shape=matrix.shape)


def fitted(family: str, matrix: sp.csr_matrix, **extra):
    return new_model(family, {**SMALL[family], **extra}).fit(matrix, ages_like(matrix))


def test_every_family_is_covered():
    assert set(SMALL) == set(COLLABORATIVE) and set(CONTENT_FAMILIES) < set(FAMILIES)


@pytest.mark.parametrize("family", PERSONALISED)
def test_personalised_families_recommend_each_users_own_block(family):
    train, holdout = block_matrix()
    recs = rank_users(fitted(family, train), train, k=2)(np.arange(train.shape[0]))
    for user in range(train.shape[0]):
        assert set(recs[user].tolist()) == own_block_unseen(user), f"{family} user {user}: {recs[user]}"
    assert evaluate(rank_users(fitted(family, train), train, 2), holdout, 2)["recall@2"] == 1.0


@pytest.mark.parametrize("family", COLLABORATIVE)
def test_recommendations_filter_seen_items_pad_with_minus_one_and_survive_save_load(family):
    matrix = small_matrix()
    model = fitted(family, matrix)
    recs = rank_users(model, matrix, k=7)(np.array([0, 1]))
    assert recs.shape == (2, 7) and recs.dtype == np.int64
    for user, row in enumerate(recs.tolist()):
        real = [item for item in row if item >= 0]
        assert not set(real) & set(matrix[user].indices.tolist())
        assert len(set(real)) == len(real) and row == real + [-1] * (7 - len(real))
    if family not in ("item_knn",):  # item-kNN scores only items sharing a user with the history
        assert sorted(recs[0][:2].tolist()) == [3, 4] and sorted(recs[1][:3].tolist()) == [0, 1, 4]
    loaded = load_model(family, model.params.model_dump(), model.to_bytes())
    np.testing.assert_array_equal(
        rank_users(loaded, matrix, 7)(np.arange(3)), rank_users(model, matrix, 7)(np.arange(3))
    )


@pytest.mark.parametrize("family", ["item_knn", "ease", "als", "popularity"])
def test_unknown_users_are_folded_in_from_their_history(family):
    train, _ = block_matrix()
    model = fitted(family, train)
    folded = rank_users(model, train, k=2, known_users=False)(np.arange(train.shape[0]))
    if family == "popularity":
        assert (folded >= 0).all()
        return
    for user in range(train.shape[0]):
        assert set(folded[user].tolist()) == own_block_unseen(user)


def test_bpr_cannot_fold_in_and_says_so_with_empty_lists():
    train, _ = block_matrix()
    model = fitted("bpr", train)
    assert (rank_users(model, train, k=2, known_users=False)(np.arange(3)) == -1).all()


def test_ease_matches_the_closed_form():
    matrix = small_matrix()
    model = new_model("ease", {"regularization": 2.0}).fit(matrix)
    x = matrix.toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(5))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    np.testing.assert_allclose(model.arrays()["weights"], b, rtol=1e-4, atol=1e-5)
    assert ease_memory_bytes(30_000) == 4 * 4 * 30_000**2


def test_time_decay_halves_confidence_per_half_life_and_off_leaves_it():
    matrix = sp.csr_matrix(np.array([[2.0, 4.0]], dtype=np.float32))
    ages = sp.csr_matrix(np.array([[10.0, 20.0]], dtype=np.float32))
    assert decayed(matrix, ages, None) is matrix
    np.testing.assert_allclose(decayed(matrix, ages, 10.0).toarray(), [[1.0, 1.0]])


def test_recent_popularity_counts_only_the_last_days_and_decay_reorders_popularity():
    # item 0: three users long ago (age 50 days); item 1: two users yesterday; user 3 has seen nothing
    matrix = sp.csr_matrix(np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32))
    ages = sp.csr_matrix(np.array([[50, 0, 0], [50, 0, 0], [50, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32))
    newcomer = np.array([4])
    all_time = new_model("popularity").fit(matrix, ages)
    assert rank_users(all_time, matrix, 2)(newcomer)[0].tolist() == [0, 1]
    decaying = new_model("popularity", {"half_life_days": 7.0}).fit(matrix, ages)
    assert rank_users(decaying, matrix, 2)(newcomer)[0].tolist() == [1, 0]
    recent = new_model("recent_popularity", {"days": 7.0}).fit(matrix, ages)
    np.testing.assert_array_equal(recent.arrays()["item_scores"], [0, 2, 0])


@pytest.mark.parametrize("block_cells", [20_000_000, 40])
def test_popularity_lists_are_the_full_sort_of_its_scores_minus_seen_items(monkeypatch, block_cells):
    monkeypatch.setattr(families, "SCORE_BLOCK_CELLS", block_cells)  # many small blocks, one per heavy user
    rng = np.random.default_rng(5)
    dense = (rng.random((300, 40)) < 0.3).astype(np.float32)
    dense[7] = 1.0  # a user who saw everything gets an empty list
    matrix = sp.csr_matrix(dense)
    model = new_model("popularity").fit(matrix)
    assert model.item_scores is not None
    model.item_scores[:10] = np.float32(rng.integers(0, 3))  # ties are broken by item index
    lists = model.recommend(np.arange(300), matrix, 12)
    for user in range(300):
        scores = model.item_scores.copy()
        scores[matrix[user].indices] = -np.inf
        order = np.lexsort((np.arange(40), -scores))
        expected = [i for i in order if np.isfinite(scores[i])][:12]
        assert lists[user].tolist() == expected + [-1] * (12 - len(expected))
    assert (lists[7] == -1).all()


def test_binary_history_ignores_confidence_and_explicit_zeros():
    matrix = sp.csr_matrix((np.array([3.0, 0.0], np.float32), np.array([0, 1]), np.array([0, 2])), shape=(1, 2))
    assert binary(matrix).toarray().tolist() == [[1.0, 0.0]] and binary(matrix).nnz == 1


@pytest.mark.parametrize("bad", [np.inf, np.nan])
@pytest.mark.parametrize("family", ["als", "item_knn", "ease"])
def test_training_refuses_non_finite_confidences(bad, family):
    matrix = sp.csr_matrix(np.array([[1.0, bad, 0.0], [0.0, 1.0, 1.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="1 of 4 confidences are not finite"):
        new_model(family).fit(matrix)
