"""Served lists for many users at once: the same lists as one user at a time, never a seen or closed item."""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pytest

from recsys_assets.domain.served_lists import (
    LISTS_SCHEMA,
    interaction_matrix,
    popularity_lists,
    recommend_lists,
    user_list,
)
from recsys_assets.resources.model_store import LocalModelStore
from recsys_assets.serving import load_bundle
from recsys_assets_tests.support.bundles import publish_fitted

DAY = date(2026, 3, 10)
ALS = {"factors": 8, "iterations": 5, "num_threads": 1, "random_state": 0}


@pytest.fixture
def store(tmp_path) -> LocalModelStore:
    return LocalModelStore(root=str(tmp_path / "model_store"))


@pytest.mark.parametrize(
    ("family", "params"),
    [("item_knn", {"neighbours": 20}), ("als", ALS), ("ease", {"regularization": 5.0}), ("popularity", {})],
)
def test_a_batch_gives_each_known_user_the_bundles_own_list_from_their_history(store, family, params):
    fitted = publish_fitted(store, "v1", family, params)
    bundle = load_bundle(fitted.uri)
    table = recommend_lists(bundle, fitted.user_ids, 7, DAY)
    assert table.schema == LISTS_SCHEMA
    assert set(table["source"].to_pylist()) == {"model"}
    assert set(table["model_version"].to_pylist()) == {"v1"} and set(table["model_family"].to_pylist()) == {family}
    for user in fitted.user_ids:
        rows = user_list(table, user)
        seen = bundle.seen_item_ids(user)
        assert rows["item_id"].to_pylist() == bundle.recommend(user, seen, 7)
        assert rows["rank"].to_pylist() == list(range(1, rows.num_rows + 1))
        assert not set(rows["item_id"].to_pylist()) & set(seen)


def test_strangers_get_the_fallback_folded_in_from_their_history_and_closed_postings_never_appear(store):
    fitted = publish_fitted(store, "v1", "item_knn", {"neighbours": 20})
    bundle = load_bundle(fitted.uri)
    closed = fitted.item_ids[:5]
    snapshot = pa.table(
        {"item_id": fitted.item_ids, "closed_date": [DAY if item in closed else None for item in fitted.item_ids]}
    )
    assert bundle.exclude_closed(snapshot) == 5
    users = [fitted.user_ids[0], "stranger-with-history", "stranger"]
    since_build = pa.table(
        {
            "user_id": ["stranger-with-history", "stranger-with-history", fitted.user_ids[0]],
            "item_id": [fitted.item_ids[12], "j-unknown", fitted.item_ids[30]],
        }
    )
    histories = interaction_matrix(pa.array(users), bundle.item_ids, since_build)
    table = recommend_lists(bundle, users, 10, DAY, histories)
    by_user = {user: user_list(table, user) for user in users}
    assert by_user[users[0]]["source"].to_pylist() == ["model"] * 10
    assert fitted.item_ids[30] not in by_user[users[0]]["item_id"].to_pylist()
    folded = by_user["stranger-with-history"]
    assert folded["source"].to_pylist() == ["fallback"] * 10
    assert folded["item_id"].to_pylist() == bundle.recommend(None, [fitted.item_ids[12]], 10)
    assert by_user["stranger"]["item_id"].to_pylist() == bundle.popular([], 10)
    assert not set(table["item_id"].to_pylist()) & set(closed)
    assert table["score"].to_pylist()[:2] == [1.0, 0.5]


def test_a_family_that_cannot_fold_in_gives_strangers_popularity_minus_their_history(store):
    fitted = publish_fitted(store, "v1", "bpr", {"factors": 8, "iterations": 5, "num_threads": 1, "random_state": 0})
    bundle = load_bundle(fitted.uri)
    seen = pa.table({"user_id": ["new"], "item_id": [bundle.popular([], 1)[0]]})
    table = recommend_lists(bundle, ["new"], 5, DAY, interaction_matrix(pa.array(["new"]), bundle.item_ids, seen))
    assert table["item_id"].to_pylist() == bundle.popular(seen["item_id"].to_pylist(), 5)
    assert table["source"].to_pylist() == ["fallback"] * 5


def test_popularity_lists_count_users_per_item_and_skip_seen_and_closed_items():
    counted = pa.table(
        {
            "user_id": ["a", "b", "c", "a", "b", "a", "d"],
            "item_id": ["x", "x", "x", "y", "y", "z", "w"],
        }
    )
    table = popularity_lists(["a", "new"], counted, 3, DAY, closed_item_ids=pa.array(["y"]))
    assert user_list(table, "new")["item_id"].to_pylist() == ["x", "z", "w"]  # ties: first seen first
    assert user_list(table, "a")["item_id"].to_pylist() == ["w"]
    assert set(table["model_family"].to_pylist()) == {"popularity"}


def test_no_users_is_an_empty_table_of_the_schema(store):
    bundle = load_bundle(publish_fitted(store, "v1", "item_knn", {"neighbours": 20}).uri)
    assert recommend_lists(bundle, [], 5, DAY).num_rows == 0
    assert popularity_lists([], pa.table({"user_id": ["a"], "item_id": ["x"]}), 5, DAY).schema == LISTS_SCHEMA
    assert np.isclose(recommend_lists(bundle, ["u0001"], 5, DAY)["score"][4].as_py(), 0.2)
