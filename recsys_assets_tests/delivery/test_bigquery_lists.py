"""The served lists in BigQuery, through the real client against the local emulator (`support/standins/bigquery.py`):
a day-partitioned table, each day replaced by one MERGE, a rerun leaving exactly one copy."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest

from recsys_assets.domain.items import generate_catalogue
from recsys_assets.domain.served_lists import LISTS_SCHEMA
from recsys_assets.domain.synthetic import generate_events
from recsys_assets.resources import build_resources
from recsys_assets.resources.bigquery_recommendation_store import BigQueryRecommendationStore
from recsys_assets_tests.support.standins.bigquery import BigQueryStandIn

# Emulator-backed throughout (and BigQuery's client is a slow import): the fast tier skips the module.
pytestmark = pytest.mark.slow

DAY = date(2026, 5, 4)


def lists(day: date, users: int, version: str = "v1") -> pa.Table:
    return pa.table(
        {
            "day": [day] * (users * 2),
            "user_id": [f"u{u}" for u in range(users) for _ in range(2)],
            "rank": pa.array([1, 2] * users, pa.int32()),
            "item_id": [f"j{(u + r) % 5}" for u in range(users) for r in range(2)],
            "score": [1.0, 0.5] * users,
            "model_version": [version] * (users * 2),
            "model_family": ["item_knn"] * (users * 2),
            "source": ["model"] * (users * 2),
        },
        schema=LISTS_SCHEMA,
    )


def test_each_day_is_replaced_whole_and_a_rerun_leaves_one_copy(bigquery_standin: BigQueryStandIn, tmp_path):
    env = {**bigquery_standin.env(), "RECSYS_DATA_DIR": str(tmp_path), "RECSYS_BQ_USE_STORAGE_API": "false"}
    store = build_resources(env, only=["recommendation_store"])["recommendation_store"]
    assert isinstance(store, BigQueryRecommendationStore)
    assert store.read_day(DAY).num_rows == 0  # no table yet: no lists served, not an error
    assert store.replace_day(DAY, lists(DAY, 3)) == 6
    assert store.replace_day(DAY + timedelta(days=1), lists(DAY + timedelta(days=1), 2)) == 4
    table = bigquery_standin.client().get_table(store.warehouse.table_id)
    assert table.time_partitioning.type_ == "DAY" and table.time_partitioning.field == "day"
    # A rerun of the day with other lists: exactly the new rows, the next day untouched.
    for _ in range(2):
        assert store.replace_day(DAY, lists(DAY, 4, "v2")) == 8
        assert store.read_day(DAY).equals(
            lists(DAY, 4, "v2").sort_by([("user_id", "ascending"), ("rank", "ascending")])
        )
        assert store.read_day(DAY + timedelta(days=1)).num_rows == 4
    assert store.read_day(DAY, user_id="u1")["item_id"].to_pylist() == ["j1", "j2"]
    # A day with no active users empties its partition.
    assert store.replace_day(DAY, LISTS_SCHEMA.empty_table()) == 0
    assert store.read_day(DAY).num_rows == 0 and store.read_day(DAY + timedelta(days=1)).num_rows == 4


def test_the_asset_writes_its_day_to_bigquery_and_a_rerun_keeps_one_copy(bigquery_standin: BigQueryStandIn, tmp_path):
    from recsys_assets_tests.delivery.test_recommendations import run
    from recsys_assets_tests.support.board import DAY as BOARD_DAY
    from recsys_assets_tests.support.board import SPEC, publish

    env = {**bigquery_standin.env(), "RECSYS_DATA_DIR": str(tmp_path)}
    resources = build_resources(env)
    resources["item_catalogue"].replace_items(generate_catalogue(SPEC))
    resources["warehouse"].replace_days(generate_events(SPEC))
    publish(resources, "v1", release=True)
    assert run(resources, BOARD_DAY, n=5).success
    first = resources["recommendation_store"].read_day(BOARD_DAY)
    assert first.num_rows > 0 and set(first["model_version"].to_pylist()) == {"v1"}
    assert run(resources, BOARD_DAY, n=5).success
    assert resources["recommendation_store"].read_day(BOARD_DAY).equals(first)
