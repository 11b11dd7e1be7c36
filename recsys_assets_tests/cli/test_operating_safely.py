"""Operating safely: settings refused at the door, no silent overwrite, one clear line per failure."""

import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta

import duckdb
import pytest

from recsys_assets.cli import main
from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.layout import ModelStoreKeys
from recsys_assets.release.model_release import ReleaseConfig
from recsys_assets.resources import build_resources
from recsys_assets.resources.warehouse import DuckDBWarehouse, WarehouseUnavailable
from recsys_assets.settings import Settings
from recsys_assets_tests.support.environment import local_env, local_resources, seed


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("RECSYS_MODEL_NAME", "../../x", "RECSYS_MODEL_NAME='../../x' is not a safe name"),
        ("RECSYS_MODEL_NAME", "a/b", "is not a safe name"),
        ("RECSYS_TRAINING_WINDOW_DAYS", "many", "RECSYS_TRAINING_WINDOW_DAYS='many' must be a whole number"),
        ("RECSYS_TRAINING_WINDOW_DAYS", "0", "must be a whole number of days, >= 1"),
        ("RECSYS_PARTITIONS_START", "last tuesday", "RECSYS_PARTITIONS_START='last tuesday' is not a date"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting(name, value, message):
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env({name: value})


def test_an_unknown_backend_selector_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigurationError, match="RECSYS_WAREHOUSE='snowflake' is not one of duckdb, bigquery"):
        build_resources(local_env(tmp_path, RECSYS_WAREHOUSE="snowflake"))


def test_store_keys_refuse_a_traversing_model_name():
    with pytest.raises(ConfigurationError, match="not a safe name"):
        ModelStoreKeys("../outside")


@pytest.mark.parametrize("pointer_path", ["/etc/passwd", "../serving.json", "models/../../x.json", "a//b.json", ""])
def test_release_pointer_path_must_be_a_safe_relative_path(pointer_path):
    with pytest.raises(ValueError, match=r"pointer_path=.* is not a safe relative path"):
        ReleaseConfig(pointer_path=pointer_path)
    assert ReleaseConfig(pointer_path="serving/models/jobs-als.json").pointer_path == "serving/models/jobs-als.json"


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://github.example.com/api/v3", True),
        ("http://127.0.0.1:8080/api/v3", True),
        ("http://localhost:8080/api/v3", True),
        ("http://github.example.com/api/v3", False),
        ("ftp://github.example.com", False),
    ],
)
def test_github_token_never_travels_over_plain_http(tmp_path, url, allowed):
    env = local_env(tmp_path, RECSYS_RELEASE="github", RECSYS_GITHUB_REPOSITORY="o/r", RECSYS_GITHUB_BASE_URL=url)
    if allowed:
        assert build_resources(env)["release_publisher"].base_url == url
    else:
        with pytest.raises(ValueError, match="must be https://"):
            build_resources(env)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["import-events", "x.csv", "--min-rating", "nan"], "--min-rating: must be a finite number"),
        (["import-events", "x.csv", "--min-rating", "inf"], "--min-rating: must be a finite number"),
        (["import-events", "x.csv", "--max-invalid-share", "-0.1"], "--max-invalid-share: must be a share"),
        (["seed", "--days", "0"], "--days: must be at least 1"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_a_bad_setting_in_the_cli_is_one_line_not_a_traceback(embedded_env, capsys):
    result = subprocess.run(
        [sys.executable, "-m", "recsys_assets", "run"],
        env={
            **local_env(embedded_env),
            "RECSYS_TRAINING_WINDOW_DAYS": "zero",
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": sys.path[0],
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "configuration error: RECSYS_TRAINING_WINDOW_DAYS='zero' must be a whole number of days, >= 1"
    )


@pytest.mark.slow
def test_seed_never_overwrites_existing_days_without_replace(embedded_env, capsys):
    args = ["seed", "--users", "50", "--items", "20", "--days", "2", "--events-per-day", "50"]
    assert main(args) == 0
    warehouse = build_resources()["warehouse"]
    before = [(p.partition_id, p.total_rows) for p in warehouse.list_partitions()]
    assert main([*args, "--seed", "9"]) == 2
    assert "pass --replace to overwrite them" in capsys.readouterr().err
    assert [(p.partition_id, p.total_rows) for p in warehouse.list_partitions()] == before
    assert main([*args, "--seed", "9", "--replace"]) == 0


@pytest.mark.slow
def test_import_prints_rows_before_and_after_per_day_and_dry_run_writes_nothing(embedded_env, capsys):
    first = embedded_env / "first.csv"
    first.write_text("user_id,item_id,timestamp\n" + "".join(f"u{i},j1,2026-01-01T0{i}:00:00Z\n" for i in range(5)))
    assert main(["import-events", str(first)]) == 0
    capsys.readouterr()
    one_row = embedded_env / "one.csv"
    one_row.write_text("user_id,item_id,timestamp\nu9,j9,2026-01-01T12:00:00Z\nu9,j9,2026-01-02T12:00:00Z\n")
    assert main(["import-events", str(one_row), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "2026-01-01: 5 -> 1 rows (would replace)" in out and "2026-01-02: 0 -> 1 rows (new day)" in out
    warehouse = build_resources()["warehouse"]
    assert [(p.partition_id, p.total_rows) for p in warehouse.list_partitions()] == [("20260101", 5)]
    assert main(["import-events", str(one_row)]) == 0
    assert "2026-01-01: 5 -> 1 rows (replaced)" in capsys.readouterr().out


@pytest.mark.slow
def test_a_long_history_import_lists_twenty_days_of_each_kind_and_counts_the_rest(embedded_env, capsys):
    history = embedded_env / "history.csv"
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(45)]
    history.write_text("user_id,item_id,timestamp\n" + "".join(f"u1,j1,{day}T08:00:00Z\n" for day in days))
    assert main(["import-events", str(history)]) == 0
    capsys.readouterr()
    assert main(["import-events", str(history), "--dry-run"]) == 0  # every day again: all replaced
    out = capsys.readouterr().out
    assert out.count("rows (would replace)") == 20 and "... and 25 more days would replace" in out

    later = embedded_env / "later.csv"
    new_days = [days[-1] + timedelta(days=i) for i in range(1, 31)]
    later.write_text("user_id,item_id,timestamp\n" + "".join(f"u1,j1,{day}T08:00:00Z\n" for day in new_days))
    assert main(["import-events", str(later)]) == 0
    out = capsys.readouterr().out
    assert out.count("(new day)") == 20 and f"... and 10 more new days up to {new_days[-1]} (10 rows)" in out


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


def _hold_lock(path, seconds):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
    return holder


@pytest.mark.slow
def test_a_locked_warehouse_is_waited_for_then_refused_naming_the_holder(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(path)).close()
    holder = _hold_lock(path, 30)
    try:
        warehouse = DuckDBWarehouse(path=str(path), lock_timeout_seconds=1.0)
        started = time.monotonic()
        with pytest.raises(WarehouseUnavailable, match=rf"locked by another process \(.*PID {holder.pid}\)"):
            warehouse.list_partitions()
        assert 0.5 < time.monotonic() - started < 5
    finally:
        holder.kill()
        holder.wait()
    # A lock released within the wait is simply waited out.
    holder = _hold_lock(path, 1)
    try:
        assert DuckDBWarehouse(path=str(path), lock_timeout_seconds=10.0).list_partitions() == []
    finally:
        holder.wait()


@pytest.mark.slow
def test_demo_on_a_locked_warehouse_refuses_instead_of_seeding_over_it(embedded_env, monkeypatch, capsys):
    resources = local_resources(embedded_env)
    seed(resources)
    rows = [(p.partition_id, p.total_rows) for p in resources["warehouse"].list_partitions()]
    monkeypatch.setenv("RECSYS_DUCKDB_LOCK_TIMEOUT_SECONDS", "0.5")
    holder = _hold_lock(embedded_env / "warehouse.duckdb", 30)
    try:
        assert main(["demo", "--users", "50", "--items", "20", "--days", "2", "--events-per-day", "50"]) == 3
    finally:
        holder.kill()
        holder.wait()
    assert capsys.readouterr().err.strip().startswith("warehouse unavailable:")
    assert [(p.partition_id, p.total_rows) for p in resources["warehouse"].list_partitions()] == rows
