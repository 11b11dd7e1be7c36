"""The settings reader: every bad `RECSYS_*` value is one `configuration error:` line naming it, empty is default.

The refusals go through the CLI's `main`, as a user meets them (`models list` builds every resource, so a
value that only a backend reads is read too); the process's own settings are never touched.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from recsys_assets.cli import main
from recsys_assets.resources import BACKENDS, build_resources
from recsys_assets.settings import REPO_ROOT, Settings, settings_table

IMAGE = "europe-west1-docker.pkg.dev/proj/repo/recsys:3f2c1ab9d0e4"
BIGQUERY = {"RECSYS_WAREHOUSE": "bigquery", "RECSYS_BQ_PROJECT": "p-roject", "RECSYS_BQ_DATASET": "events"}
VERTEX = {
    "RECSYS_TRAINING_LAUNCHER": "vertex",
    "RECSYS_IMAGE": IMAGE,
    "RECSYS_VERTEX_PROJECT": "p-roject",
    "RECSYS_VERTEX_LOCATION": "europe-west1",
    "RECSYS_VERTEX_MESSAGES_BUCKET": "pipes",
}


def refusal(monkeypatch, capsys, env: dict[str, str], *command: str) -> str:
    """The one line the CLI stops with under `env` (exit status 2)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    status = main(list(command or ("models", "list")))
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("configuration error: "), err
    return err.strip()


# Issue 27's cases: each raised a traceback (or was accepted) before.
@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"RECSYS_TRAINING_WINDOW_DAYS": "99999999999999999999"},
            "RECSYS_TRAINING_WINDOW_DAYS='99999999999999999999' must be at most 36500 days",
        ),
        ({"RECSYS_PARTITIONS_START": "9999-12-31"}, "RECSYS_PARTITIONS_START='9999-12-31' is in the future"),
        (
            {**BIGQUERY, "RECSYS_BQ_USE_STORAGE_API": "maybe"},
            "RECSYS_BQ_USE_STORAGE_API='maybe' should be a valid boolean",
        ),
        ({"RECSYS_TRAINING_LAUNCHER": "docker"}, "RECSYS_TRAINING_LAUNCHER=docker needs RECSYS_IMAGE"),
        (
            {"RECSYS_TRAINING_LAUNCHER": "docker", "RECSYS_IMAGE": "repo/recsys:latest"},
            "RECSYS_IMAGE='repo/recsys:latest' image 'repo/recsys:latest' is not pinned",
        ),
        (
            {**VERTEX, "RECSYS_VERTEX_PROJCT": "p"},
            "unknown settings: RECSYS_VERTEX_PROJCT (did you mean RECSYS_VERTEX_PROJECT?)",
        ),
        ({**VERTEX, "RECSYS_VERTEX_LABELS": "team=recsys"}, "RECSYS_VERTEX_LABELS is not JSON"),
        ({**VERTEX, "RECSYS_VERTEX_LABELS": "[1, 2]"}, "RECSYS_VERTEX_LABELS=[1, 2] should be a valid dictionary"),
        ({"RECSYS_VERTEX_PROJECT": "p"}, None),  # a Vertex setting without the Vertex launcher: not read, no error
        (
            {"RECSYS_RELEASE": "github", "RECSYS_GITHUB_REPOSITORY": "noslash"},
            "RECSYS_GITHUB_REPOSITORY='noslash' must be owner/name",
        ),
        ({"RECSYS_AUTOMATION": "yes"}, "RECSYS_AUTOMATION='yes' is not one of running, stopped"),
        ({"RECSYS_DATA_DIR": "/dev/null"}, "RECSYS_DATA_DIR='/dev/null' exists and is not a folder"),
        ({"RECSYS_ITEMS_TABLE": "events"}, "RECSYS_ITEMS_TABLE='events' is the events table of the warehouse"),
        ({"RECSYS_ITEMS_TABLE": "EVENTS"}, "RECSYS_ITEMS_TABLE='EVENTS' is the events table"),  # DuckDB ignores case
        ({"RECSYS_ITEMS_TABLE": "events_partitions"}, "is the events table"),  # the DuckDB mirror of its days
        ({**BIGQUERY, "RECSYS_BQ_TABLE": "clicks", "RECSYS_ITEMS_TABLE": "clicks"}, "RECSYS_ITEMS_TABLE='clicks'"),
        ({"RECSYS_WAREHOSUE": "bigquery"}, "unknown settings: RECSYS_WAREHOSUE (did you mean RECSYS_WAREHOUSE?)"),
        ({"RECSYS_WAREHOUSE": "snowflake"}, "RECSYS_WAREHOUSE='snowflake' is not one of duckdb, bigquery"),
        (
            {"RECSYS_DUCKDB_PAIRS_MEMORY_MIB": "32"},
            "RECSYS_DUCKDB_PAIRS_MEMORY_MIB='32' should be greater than or equal to 64",
        ),
        ({"RECSYS_RETRAIN_TIMEZONE": "Mars/Olympus"}, "RECSYS_RETRAIN_TIMEZONE='Mars/Olympus' is not an IANA"),
        ({"RECSYS_PARTITIONS_START": "20261301"}, "RECSYS_PARTITIONS_START='20261301' is not a date"),
        ({"RECSYS_CODE_VERSION": "abc\n<img src=x onerror=alert(1)>"}, "RECSYS_CODE_VERSION='abc\\n<img"),
        (
            {"RECSYS_ARTIFACTS_URI": "ftp://host/artifacts"},
            "RECSYS_ARTIFACTS_URI='ftp://host/artifacts' has an unknown",
        ),
        (
            {"RECSYS_S3_ACCESS_KEY_SECRET": "../../etc/passwd"},
            "RECSYS_S3_ACCESS_KEY_SECRET='../../etc/passwd' is not a",
        ),
    ],
)
def test_a_bad_setting_is_one_configuration_error_line_naming_it(embedded_env, monkeypatch, capsys, env, expected):
    if expected is None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        assert main(["models", "list"]) == 0
        return
    assert expected in refusal(monkeypatch, capsys, env)


def test_a_missing_secret_is_a_configuration_error_naming_it(embedded_env, monkeypatch, capsys):
    github = {"RECSYS_RELEASE": "github", "RECSYS_GITHUB_REPOSITORY": "o/r"}
    line = refusal(monkeypatch, capsys, github, "models", "sync")
    assert "secret 'github-token' not found: set RECSYS_SECRET_GITHUB_TOKEN" in line


def test_production_refuses_to_start_without_a_partitions_start(embedded_env, monkeypatch, capsys):
    monkeypatch.delenv("RECSYS_PARTITIONS_START", raising=False)
    line = refusal(monkeypatch, capsys, {"RECSYS_ENVIRONMENT": "production"})
    assert "RECSYS_ENVIRONMENT=production needs RECSYS_PARTITIONS_START" in line
    monkeypatch.setenv("RECSYS_PARTITIONS_START", "2026-01-01")
    assert main(["models", "list"]) == 0
    # Locally the start follows the data: no setting needed.
    monkeypatch.setenv("RECSYS_ENVIRONMENT", "local")
    monkeypatch.delenv("RECSYS_PARTITIONS_START")
    assert main(["models", "list"]) == 0


@pytest.mark.parametrize("name", [info.alias for info in Settings.model_fields.values()])
def test_an_empty_value_means_the_default(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    default = Settings.from_env({}).model_dump()
    assert Settings.from_env({name: ""}).model_dump() == default
    assert Settings.from_env({name: "  "}).model_dump() == default


def test_an_empty_data_dir_is_the_default_folder_never_the_current_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    resources = build_resources({"RECSYS_DATA_DIR": ""})
    assert Path(resources["model_store"].root) == REPO_ROOT / "data" / "model_store"
    assert Path(resources["warehouse"].path) == REPO_ROOT / "data" / "warehouse.duckdb"


def test_every_selector_offers_exactly_the_backends_of_its_resource():
    for resource, backends in BACKENDS.items():
        field = Settings.model_fields.get(resource)
        if field is None:  # derived: the catalogue follows the warehouse, the tracker its URI
            continue
        (choices,) = [get_args(arg) for arg in get_args(field.annotation) if get_args(arg)] or [
            get_args(field.annotation)
        ]
        assert set(choices) == set(backends), resource
    assert set(BACKENDS["item_catalogue"]) == set(BACKENDS["warehouse"])
    assert {Settings.from_env(env).tracker for env in ({}, {"RECSYS_MLFLOW_TRACKING_URI": "sqlite:///m.db"})} == set(
        BACKENDS["tracker"]
    )


def test_the_readme_lists_every_setting_as_the_reader_reads_it():
    readme = (REPO_ROOT / "README.md").read_text()
    assert settings_table() in readme, "regenerate the README's table with `python -m recsys_assets.settings`"


@pytest.mark.slow  # a process of its own: the reader must go away while it writes
def test_a_reader_that_stops_reading_ends_the_cli_quietly(embedded_env):
    command = [sys.executable, "-m", "recsys_assets", "models", "list"]
    listing = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert listing.stdout is not None and listing.stderr is not None
    listing.stdout.close()  # `| head -1`, at its most abrupt: the reader is gone before anything is written
    err = listing.stderr.read().decode()
    assert listing.wait(timeout=60) == 141, err
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
