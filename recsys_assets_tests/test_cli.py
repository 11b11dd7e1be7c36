"""The README's commands: demo on an empty warehouse, and MovieLens import followed by run."""

import json

import numpy as np
import pyarrow.compute as pc
import pytest

from recsys_assets.__main__ import main
from recsys_assets.domain.synthetic import generate_events
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.helpers import SMALL_SPEC, local_env

pytestmark = pytest.mark.slow


@pytest.fixture
def embedded_env(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # ephemeral instance: nothing outside tmp_path
    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_demo_seeds_an_empty_warehouse_and_prints_metrics_and_bundle(embedded_env, capsys):
    args = ["demo", "--users", "600", "--items", "300", "--days", "10", "--events-per-day", "2500"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "seeded" in out and "| model (ALS) |" in out and "| popularity |" in out
    version = out.strip().splitlines()[-1].split()[2].rstrip(":")
    manifest = json.loads(
        (embedded_env / "model_store/models" / SETTINGS.model_name / version / "manifest.json").read_text()
    )
    assert manifest["metrics"]["model"]["ndcg@10"] > manifest["metrics"]["baselines"]["popularity"]["ndcg@10"]

    assert main(args) == 0  # a second demo reuses the data instead of seeding again
    assert "seeded" not in capsys.readouterr().out


def test_movielens_u_data_import_then_run_produces_a_bundle(embedded_env, capsys):
    # MovieLens u.data layout (user item rating unix_ts, tab-separated) made from synthetic events,
    # since public data sets cannot be downloaded here; ratings follow the event funnel.
    events = generate_events(SMALL_SPEC)
    users = pc.cast(pc.utf8_slice_codeunits(events["user_id"], 1), "int64").to_numpy()
    items = pc.cast(pc.utf8_slice_codeunits(events["item_id"], 3), "int64").to_numpy()
    rating = np.select(
        [events["event_type"].to_numpy(zero_copy_only=False) == t for t in ("view", "bookmark", "apply")], [3, 4, 5]
    )
    seconds = pc.cast(events["event_ts"], "int64").to_numpy() // 1_000_000
    path = embedded_env / "u.data"
    np.savetxt(path, np.column_stack([users + 1, items + 1, rating, seconds]), fmt="%d", delimiter="\t")

    assert main(["import-events", str(path), "--format", "movielens", "--min-rating", "3"]) == 0
    assert f"into {SMALL_SPEC.n_days} daily partitions" in capsys.readouterr().out
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert f"Holdout of partition {SMALL_SPEC.end_date.isoformat()}" in out
    version = out.strip().splitlines()[-1].split()[2].rstrip(":")
    manifest = json.loads(
        (embedded_env / "model_store/models" / SETTINGS.model_name / version / "manifest.json").read_text()
    )
    assert set(manifest["metrics"]["model"]) == {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage"}
    assert manifest["data"]["events"] == events.num_rows


def test_run_on_an_empty_warehouse_says_what_to_do(embedded_env):
    with pytest.raises(SystemExit, match="holds no events"):
        main(["run"])
