"""The `recommendation_outcomes` asset through `materialize`: yesterday's lists judged on today's interactions."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import dagster as dg
import pyarrow.compute as pc
import pytest

from recsys_assets.cli import main
from recsys_assets.delivery.recommendation_outcomes import outcome_path, recommendation_outcomes
from recsys_assets.delivery.recommendations import day_bounds, recommendations
from recsys_assets.domain import storage
from recsys_assets.domain.events import EVENT_TYPE_WEIGHTS
from recsys_assets.domain.outcomes import outcomes
from recsys_assets_tests.support.board import DAY, publish
from recsys_assets_tests.support.environment import local_env


def materialize(resources: dict[str, Any], day: date, *assets: dg.AssetsDefinition) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(assets), partition_key=day.isoformat(), resources=resources, raise_on_error=False)


def metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    [event] = result.asset_materializations_for_node(asset)
    return {key: getattr(value, "value", value) for key, value in event.metadata.items()}


@pytest.mark.slow
def test_yesterdays_lists_are_judged_on_todays_interactions_beside_popularity(board, tmp_path, monkeypatch, capsys):
    publish(board, "v1", release=True)
    served_on = DAY - timedelta(days=1)
    assert materialize(board, served_on, recommendations).success
    result = materialize(board, DAY, recommendation_outcomes)
    assert result.success
    meta = metadata(result, "recommendation_outcomes")
    lists = board["recommendation_store"].read_day(served_on)
    events = board["warehouse"].read_events(*day_bounds(DAY, 1))
    [expected] = outcomes(lists, events, 20, EVENT_TYPE_WEIGHTS)
    assert meta["model_version"] == "v1" and meta["served_on"] == served_on.isoformat()
    assert meta["model_hit_rate"] == pytest.approx(expected.hit_rate, abs=1e-6) and expected.hit_rate > 0
    assert meta["model_users"] == pc.count_distinct(lists["user_id"]).as_py()
    for name in ("hit_rate", "precision", "recall", "ndcg", "interaction_share"):
        assert 0 <= meta[f"counterfactual_{name}"] <= 1
    assert meta["lift_hit_rate"] == pytest.approx(meta["model_hit_rate"] - meta["counterfactual_hit_rate"], abs=1e-5)
    assert "| v1 |" in meta["last_14_days"] and "| v1 |" in meta["by_version"]
    record = storage.read_json(outcome_path(board["artifacts"].root_uri, DAY.isoformat()))
    assert record["version"] == "v1" and record["counterfactual"]["version"] == "popularity_7d"

    # `models show` prints the days this version served, with the counterfactual beside them.
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert main(["models", "show", "v1"]) == 0
    shown = capsys.readouterr().out
    assert "outcome of the lists it served (1 days):" in shown
    assert f"| {DAY} | v1 |" in shown and f"{meta['counterfactual_hit_rate']:.4f}" in shown


def test_a_day_whose_lists_are_missing_says_no_lists_served_instead_of_zeros(board):
    result = materialize(board, DAY, recommendation_outcomes)
    assert result.success
    meta = metadata(result, "recommendation_outcomes")
    assert meta["note"] == f"no lists served on D-1 ({DAY - timedelta(days=1)}): nothing to measure"
    assert "model_hit_rate" not in meta and "counterfactual_hit_rate" not in meta
    assert "no lists served on D-1" in meta["last_14_days"]
