"""Every model family gives the known answer on a small fixed matrix, and `recommend` filters, pads and round-trips."""

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_assets.domain.metrics import ranking_metrics
from recsys_assets.domain.params import ALSParams
from recsys_assets.domain.recommenders import (
    als_from_bytes,
    confidence,
    factor_model,
    fit_als,
    item_knn_model,
    knn_from_bytes,
    model_to_bytes,
    popularity_model,
    recommend,
)

BLOCK = 6  # items per block and users per group
ALS = ALSParams(factors=4, regularization=0.01, iterations=10, num_threads=1, random_state=0)


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


MODELS = {
    "als": lambda m: fit_als(m, ALSParams(factors=2, iterations=3, num_threads=1, random_state=0)),
    "popularity": popularity_model,
    "knn": item_knn_model,
}


def test_als_recommends_each_users_own_block_and_its_hidden_item():
    train, holdout = block_matrix()
    users = np.arange(train.shape[0])
    recs = recommend(fit_als(train, ALS), train, users, k=2)
    for user in users:
        # the only two unseen items of the user's block fill the top two, the held-out one among them
        assert set(recs[user].tolist()) == own_block_unseen(user), f"user {user}: {recs[user]}"
    # so every held-out item is hit within k=2: recall@2 = 1 and ndcg@2 >= 1/(1 + 1/log2(3)) per user
    assert ranking_metrics(recs, holdout, train.shape[1])["recall@2"] == 1.0


def test_item_knn_recommends_the_block_neighbours():
    train, _ = block_matrix()
    users = np.arange(train.shape[0])
    recs = recommend(item_knn_model(train), train, users, k=2)
    for user in users:
        assert set(recs[user].tolist()) == own_block_unseen(user), f"user {user}: {recs[user]}"


def test_popularity_ranks_items_by_user_count_not_summed_confidence():
    # item user counts: item 0 -> 1 user (with a huge confidence), item 1 -> 4, item 2 -> 2, item 3 -> 3
    dense = np.array(
        [
            [50, 1, 0, 1],
            [0, 1, 1, 1],
            [0, 1, 1, 1],
            [0, 1, 0, 0],
            [0, 0, 0, 0],  # a user with no history
        ],
        dtype=np.float32,
    )
    matrix = sp.csr_matrix(dense)
    model = popularity_model(matrix)
    np.testing.assert_array_equal(model.item_factors.ravel(), [1, 4, 2, 3])
    recs = recommend(model, matrix, np.array([4, 3]), k=4)
    assert recs[0].tolist() == [1, 3, 2, 0]  # by count: 4, 3, 2, 1 (summed confidence would put item 0 first)
    assert recs[1].tolist()[:3] == [3, 2, 0]  # user 3 saw item 1, so it is filtered out


def test_factor_model_scores_are_dot_products():
    users = np.array([[1, 0], [0, 1]], dtype=np.float32)
    items = np.array([[3, 0], [1, 0], [0, 2], [0, 5]], dtype=np.float32)
    empty = sp.csr_matrix((2, 4), dtype=np.float32)
    recs = recommend(factor_model(users, items), empty, np.array([0, 1]), k=2)
    assert recs.tolist() == [[0, 1], [3, 2]]


@pytest.mark.parametrize(
    "family",
    ["als", "popularity", "knn"],
)
def test_recommend_never_returns_seen_items(family):
    train, _ = block_matrix()
    model = MODELS[family](train)
    users = np.arange(train.shape[0])
    recs = recommend(model, train, users, k=8)  # each user has exactly 8 unseen items out of 12
    assert recs.shape == (12, 8)
    for user in users:
        row = recs[user].tolist()
        real = [item for item in row if item >= 0]
        assert not set(train[user].indices.tolist()) & set(real), f"user {user} was recommended seen items: {row}"
        assert len(set(real)) == len(real) and row == real + [-1] * (8 - len(real))  # distinct, then padding
        if family == "knn":
            # item-kNN scores only items sharing a user with the history: the two block neighbours
            assert set(real[:2]) == own_block_unseen(user)
        else:
            assert len(real) == 8  # factor models score every item


@pytest.mark.parametrize("family", list(MODELS))
def test_recommend_pads_with_minus_one_when_fewer_than_k_unseen(family):
    matrix = small_matrix()
    model = MODELS[family](matrix)
    # 5 items, user 0 saw 3, k=4: 2 real recommendations, then 2 empty slots
    recs = recommend(model, matrix, np.array([0]), k=4)
    assert recs.shape == (1, 4)
    assert sorted(recs[0, :2].tolist()) == [3, 4] and recs[0, 2:].tolist() == [-1, -1]
    # k larger than the catalogue: user 1 saw {2, 3}, so {0, 1, 4} then 4 empty slots
    recs = recommend(model, matrix, np.array([1]), k=7)
    assert recs.shape == (1, 7)
    assert sorted(recs[0, :3].tolist()) == [0, 1, 4] and recs[0, 3:].tolist() == [-1] * 4


def test_recommend_with_no_users_gives_an_empty_k_wide_matrix():
    matrix = small_matrix()
    recs = recommend(popularity_model(matrix), matrix, np.array([], dtype=np.int64), k=3)
    assert recs.shape == (0, 3) and recs.dtype == np.int64


@pytest.mark.parametrize("family", ["als", "popularity"])
def test_factor_models_round_trip_through_bytes(family):
    train, _ = block_matrix()
    model = MODELS[family](train)
    loaded = als_from_bytes(model_to_bytes(model))
    np.testing.assert_array_equal(loaded.item_factors, model.item_factors)
    users = np.arange(train.shape[0])
    np.testing.assert_array_equal(recommend(loaded, train, users, 5), recommend(model, train, users, 5))
    # folding users in uses the stored regularization and alpha too
    np.testing.assert_array_equal(
        recommend(loaded, train, users, 5, recalculate_user=True),
        recommend(model, train, users, 5, recalculate_user=True),
    )


def test_item_knn_round_trips_through_bytes():
    train, _ = block_matrix()
    model = item_knn_model(train)
    loaded = knn_from_bytes(model_to_bytes(model))
    assert (loaded.similarity != model.similarity).nnz == 0
    users = np.arange(train.shape[0])
    np.testing.assert_array_equal(recommend(loaded, train, users, 4), recommend(model, train, users, 4))


def test_confidence_without_bm25_is_the_matrix_itself():
    matrix = small_matrix() * 3
    assert confidence(matrix, ALS.model_copy(update={"bm25_k1": 0.0})) is matrix
    weighted = confidence(matrix, ALS)  # bm25_k1 = 100 by default
    assert weighted.dtype == np.float32 and weighted.format == "csr"
    assert (weighted != 0).toarray().tolist() == (matrix != 0).toarray().tolist()
    assert not np.allclose(weighted.toarray(), matrix.toarray())


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_als_refuses_non_finite_confidences(bad):
    matrix = sp.csr_matrix(np.array([[1.0, bad, 0.0], [0.0, 1.0, 1.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="1 of 4 confidences are not finite"):
        fit_als(matrix, ALSParams(factors=2, iterations=1, bm25_k1=0))
