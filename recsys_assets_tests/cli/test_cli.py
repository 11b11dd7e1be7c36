"""The README's commands: demo on an empty warehouse, and MovieLens import followed by run."""

import json

import pytest

from recsys_assets.cli import main
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.data import MOVIELENS_SPEC, write_movielens_u_data

pytestmark = pytest.mark.slow
# The default window (28 days), so the default 7-day global cut applies, with about as many events as SMALL_SPEC.


def test_demo_seeds_an_empty_warehouse_and_prints_the_selection_both_protocols_and_the_bundle(embedded_env, capsys):
    # The default 28-day window, so the default 7-day global cut has days to fit, validate and hold out.
    args = ["demo", "--users", "600", "--items", "300", "--days", "28", "--events-per-day", "900"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "seeded" in out and "Candidates tried" in out and "| popularity |" in out
    family = out.split("\nselected: ", 1)[1].split()[0]
    assert f"| model ({family}) |" in out
    assert "per_user holdout of partition" in out and "global_cut holdout of partition" in out
    version = out.strip().splitlines()[-1].split()[2].rstrip(":")
    manifest = json.loads(
        (embedded_env / "model_store/models" / SETTINGS.model_name / version / "manifest.json").read_text()
    )
    assert manifest["model"]["family"] == family and manifest["protocol"] == "global_cut"
    assert set(manifest["protocols"]) == {"per_user", "global_cut"}
    assert manifest["metrics"]["model"]["ndcg@10"] > manifest["metrics"]["baselines"]["popularity"]["ndcg@10"]

    assert main(args) == 0  # a second demo reuses the data instead of seeding again
    assert "seeded" not in capsys.readouterr().out


def test_a_window_too_short_for_the_global_cut_fails_at_the_training_set_naming_the_setting(embedded_env, capsys):
    args = ["demo", "--users", "300", "--items", "150", "--days", "10", "--events-per-day", "800"]
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("run failed: training_set: ")
    assert "training_set.cut_days=7 is too long for 10 days of data" in err[-1]
    assert "Lower training_set.cut_days to at most 4" in err[-1]


def test_movielens_u_data_import_then_run_produces_a_bundle(embedded_env, capsys):
    path = embedded_env / "u.data"
    written = write_movielens_u_data(path, MOVIELENS_SPEC)

    assert main(["import-events", str(path), "--format", "movielens", "--min-rating", "3"]) == 0
    assert f"into {MOVIELENS_SPEC.n_days} daily partitions" in capsys.readouterr().out
    assert main(["run"]) == 0
    out = capsys.readouterr().out
    assert f"global_cut holdout of partition {MOVIELENS_SPEC.end_date.isoformat()}" in out
    version = out.strip().splitlines()[-1].split()[2].rstrip(":")
    manifest = json.loads(
        (embedded_env / "model_store/models" / SETTINGS.model_name / version / "manifest.json").read_text()
    )
    assert set(manifest["metrics"]["model"]) == {"precision@10", "recall@10", "ndcg@10", "map@10", "coverage"}
    assert manifest["data"]["events"] == written


def test_run_on_an_empty_warehouse_says_what_to_do(embedded_env):
    with pytest.raises(SystemExit, match="holds no events"):
        main(["run"])
