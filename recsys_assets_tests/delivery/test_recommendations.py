"""The `recommendations` asset through `materialize`: the released champion's lists in the warehouse, once per day.

Champions are real bundles fitted on the synthetic job board's own events (`publish_from_events`) and
released through the registry, as a merged release pull request records them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from recsys_assets.cli import main
from recsys_assets.delivery.recommendations import day_bounds, lists_path, recommendations
from recsys_assets.domain import storage
from recsys_assets.domain.items import as_of
from recsys_assets.domain.layout import ModelStoreKeys
from recsys_assets.domain.served_lists import LISTS_SCHEMA, forbidden_slots
from recsys_assets.resources.registry import ModelRegistry
from recsys_assets.service.app import create_app
from recsys_assets.service.champion import ChampionFollower
from recsys_assets.service.metrics import ServiceMetrics
from recsys_assets_tests.support.board import DAY, MODEL, SPEC, publish
from recsys_assets_tests.support.environment import local_env
from recsys_assets_tests.support.service import eventually, running


def run(resources: dict[str, Any], day: date = DAY, **config: Any) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [recommendations],
        partition_key=day.isoformat(),
        resources=resources,
        run_config={"ops": {"recommendations": {"config": config}}} if config else None,
        raise_on_error=False,
    )


def materialization(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [event] = result.asset_materializations_for_node("recommendations")
    return {key: getattr(value, "value", value) for key, value in event.metadata.items()}


@pytest.mark.slow
def test_the_released_champions_lists_are_written_once_per_day_never_a_proposed_versions(board):
    publish(board, "v1", release=True)
    publish(board, "v2", release=False)  # proposed, waiting for review: never served
    result = run(board, n=10)
    assert result.success
    lists = board["recommendation_store"].read_day(DAY)
    assert lists.schema == LISTS_SCHEMA
    assert set(lists["model_version"].to_pylist()) == {"v1"}
    assert "model" in set(lists["source"].to_pylist()) <= {"model", "fallback"}
    meta = materialization(result)
    assert meta["champion"] == "v1" and meta["rows"] == lists.num_rows == meta["dagster/row_count"]
    assert meta["users"] == pc.count_distinct(lists["user_id"]).as_py()
    assert 0 < meta["catalogue_coverage"] <= 1 and 0 <= meta["fallback_share"] < 1
    # Every user active in the 28 days up to DAY got a list; no list is longer than n.
    active = board["warehouse"].read_events(*day_bounds(DAY, 28))
    assert set(lists["user_id"].to_pylist()) == set(active["user_id"].to_pylist())
    assert pc.max(lists["rank"]).as_py() == 10
    # Never an item the user interacted with in the window, never a posting closed on the day.
    snapshot = as_of(board["item_catalogue"].read_items(DAY), DAY)
    closed = snapshot.filter(pc.is_valid(snapshot["closed_date"]))["item_id"]
    assert len(closed) > 0
    assert forbidden_slots(lists, active, closed) == (0, 0)
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.metadata["slots"].value == lists.num_rows
    # The Parquet copy in the artefact store holds the same rows.
    copy = storage.table_from_bytes(storage.read_bytes(lists_path(board["artifacts"].root_uri, DAY.isoformat())))
    assert copy.sort_by([("user_id", "ascending"), ("rank", "ascending")]).equals(lists)

    # A rerun of the day (and of the day before) leaves exactly one copy of each; the other day is untouched.
    assert run(board, DAY - timedelta(days=1), n=10).success
    before = board["recommendation_store"].read_day(DAY - timedelta(days=1))
    assert run(board, n=10).success
    assert board["recommendation_store"].read_day(DAY).equals(lists)
    assert board["recommendation_store"].read_day(DAY - timedelta(days=1)).equals(before)

    # Once v2's release is merged, the day's rerun serves v2, and only v2.
    ModelRegistry(board["model_store"], MODEL).release("v2", "merged in the test")
    assert run(board, n=10).success
    assert set(board["recommendation_store"].read_day(DAY)["model_version"].to_pylist()) == {"v2"}


@pytest.mark.slow
def test_the_services_list_for_a_user_is_their_rows_in_the_table(board):
    # Trained through the day served: the service knows every interaction the table excludes (the table also
    # excludes interactions since a champion's build, which a bundle's history cannot hold).
    publish(board, "v1", release=True, family="item_knn", through=DAY)
    assert run(board, n=10).success
    lists = board["recommendation_store"].read_day(DAY)
    metrics = ServiceMetrics()
    follower = ChampionFollower(
        board["model_store"], MODEL, metrics, catalogue=board["item_catalogue"], reload_seconds=0.05, day=DAY
    )
    users = sorted(set(lists["user_id"].to_pylist()))[::15]
    with running(create_app(follower, metrics)) as client:
        eventually(lambda: client.get("/readyz").status_code == 200)
        for user in [*users, "someone-new"]:
            body = client.get(f"/v1/users/{user}/recommendations", params={"n": 10}).json()
            rows = lists.filter(pc.equal(lists["user_id"], user))
            if user == "someone-new":
                assert rows.num_rows == 0 and body["source"] == "fallback"
                continue
            assert body["items"] == rows["item_id"].to_pylist()
            assert body["source"] == rows["source"][0].as_py() and body["model_version"] == "v1"


@pytest.mark.slow
def test_without_a_champion_the_lists_are_popularity_with_a_warning_never_a_failure(board):
    publish(board, "v1", release=False)
    result = run(board, n=5)
    assert result.success
    lists = board["recommendation_store"].read_day(DAY)
    assert lists.num_rows > 0
    assert set(lists["source"].to_pylist()) == {"fallback"}
    assert set(lists["model_family"].to_pylist()) == {"popularity"}
    meta = materialization(result)
    assert meta["champion"] == "none" and "no champion released yet" in meta["note"]
    assert meta["fallback_share"] == 1.0


@pytest.mark.slow
def test_a_day_without_active_users_writes_an_empty_partition_and_says_so(board):
    result = run(board, SPEC.start_date - timedelta(days=40), n=5, active_days=3)
    assert result.success
    meta = materialization(result)
    assert meta["rows"] == 0 and "no active users" in meta["note"]


@pytest.mark.slow
def test_an_unreadable_champion_fails_in_one_line_naming_version_and_file_and_keeps_earlier_days(board):
    publish(board, "v1", release=True)
    assert run(board, DAY - timedelta(days=1), n=5).success
    before = board["recommendation_store"].read_day(DAY - timedelta(days=1))
    key = ModelStoreKeys(MODEL).bundle_file("v1", "model.npz")
    board["model_store"].put_object(key, b"not the model that was checksummed")
    result = run(board, n=5)
    assert not result.success
    [failure] = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "v1" in message and "model.npz" in message and "checksum" in message
    assert len(failure.step_failure_data.user_failure_data.description.splitlines()) == 1
    assert board["recommendation_store"].read_day(DAY - timedelta(days=1)).equals(before)
    assert board["recommendation_store"].read_day(DAY).num_rows == 0


def test_the_store_refuses_rows_of_another_day(board):
    with pytest.raises(ValueError, match="other days"):
        board["recommendation_store"].replace_day(DAY, _one_row(DAY + timedelta(days=1)))


def _one_row(day: date) -> pa.Table:
    return pa.table(
        {
            "day": [day],
            "user_id": ["u"],
            "rank": pa.array([1], pa.int32()),
            "item_id": ["j"],
            "score": [1.0],
            "model_version": ["v"],
            "model_family": ["item_knn"],
            "source": ["model"],
        },
        schema=LISTS_SCHEMA,
    )


@pytest.mark.slow
def test_the_recommend_command_prints_a_users_served_list_with_titles(board, tmp_path, monkeypatch, capsys):
    publish(board, "v1", release=True)
    assert run(board, n=5).success
    user = board["recommendation_store"].read_day(DAY)["user_id"][0].as_py()
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert main(["recommend", user, "--day", DAY.isoformat()]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{user} on {DAY}: item_knn v1 (model)" and len(lines) == 6
    assert lines[1].split()[0] == "1" and lines[1].endswith("engineer")  # the posting's title from the catalogue
    assert main(["recommend", "nobody", "--day", DAY.isoformat()]) == 1
    assert "no list served to nobody" in capsys.readouterr().err
