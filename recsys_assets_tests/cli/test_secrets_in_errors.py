"""Secrets never reach error text: the CLI's output, a failed step's event log, run index and compute log.

Stand-ins: GitHub is the `pytest-httpserver` REST stand-in (`support/standins/github.py`), because the
token leaks through the real PyGithub/requests client (requests refuses a header it would have to
send, quoting it); MLflow is a tracking URI on a closed loopback port (the server down, as in the
issue), reached by the real MLflow client.
"""

import socket
from pathlib import Path

import dagster as dg
import pytest

from recsys_assets.cli import main
from recsys_assets.domain import storage
from recsys_assets.domain.records import BundleRef
from recsys_assets.partitions import daily_partitions
from recsys_assets.release.model_release import model_release
from recsys_assets.resources import build_resources
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.model_store import ModelStore
from recsys_assets_tests.support.bundles import publish_version
from recsys_assets_tests.support.environment import PROJECT_EVENT_LOG, local_env
from recsys_assets_tests.support.standins.github import TOKEN

PARTITION = "2026-02-28"
VERSION = "20260301T000000Z-0000abcd"
# A token with a header injection inside: stripping cannot repair it, so requests refuses the header
# and quotes it. Each part is long enough to be unmistakable in any file.
BROKEN_TOKEN = "ghp_firstHALFofTheToken\r\nX-Injected: secondHALFofTheToken"
TOKEN_PARTS = ("ghp_firstHALFofTheToken", "secondHALFofTheToken")


def github_env(root: Path, standin, token: str) -> dict[str, str]:
    secrets = root / "secrets"
    secrets.mkdir(parents=True, exist_ok=True)
    (secrets / "github-token").write_text(token)
    return local_env(
        root,
        RECSYS_RELEASE="github",
        RECSYS_GITHUB_REPOSITORY=standin.repository,
        RECSYS_GITHUB_BASE_URL=standin.base_url,
        RECSYS_SECRETS_DIR=str(secrets),
    )


def use_env(monkeypatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.slow  # GitHub's pauses between requests, or a materialization: seconds
def test_a_token_with_a_trailing_newline_is_stripped_and_works(github_standin, tmp_path, monkeypatch, capsys):
    # What `echo $TOKEN | gcloud secrets versions add --data-file=-` stores: the value and a newline.
    env = github_env(tmp_path, github_standin, TOKEN + "\n")
    use_env(monkeypatch, env)
    publish_version(build_resources()["model_store"], VERSION)

    assert main(["models", "promote", VERSION]) == 0
    out = capsys.readouterr().out
    assert f"{VERSION} proposed (opened): https://github.example/" in out
    assert {call.headers["Authorization"] for call in github_standin.calls} == {f"token {TOKEN}"}


@pytest.mark.slow  # GitHub's pauses between requests, or a materialization: seconds
def test_the_environment_path_strips_the_token_too(github_standin, tmp_path, monkeypatch, capsys):
    env = github_env(tmp_path, github_standin, "unused")
    env.pop("RECSYS_SECRETS_DIR")
    use_env(monkeypatch, {**env, "RECSYS_SECRET_GITHUB_TOKEN": f"  {TOKEN}\n"})
    monkeypatch.delenv("RECSYS_SECRETS_DIR", raising=False)
    publish_version(build_resources()["model_store"], VERSION)

    assert main(["models", "promote", VERSION]) == 0
    assert {call.headers["Authorization"] for call in github_standin.calls} == {f"token {TOKEN}"}


def test_an_unusable_token_is_named_never_printed_by_the_cli(github_standin, tmp_path, monkeypatch, capsys):
    use_env(monkeypatch, github_env(tmp_path, github_standin, BROKEN_TOKEN))
    publish_version(build_resources()["model_store"], VERSION)

    for command in (["models", "promote", VERSION], ["models", "sync"]):
        assert main(command) != 0
        captured = capsys.readouterr()
        text = captured.out + captured.err
        assert not any(part in text for part in TOKEN_PARTS), text
        last = captured.err.strip().splitlines()[-1]
        assert "holds characters an HTTP header cannot carry" in last and "github-token@file:" in last
    assert github_standin.calls == []  # refused by the client before anything was sent


@dg.asset(partitions_def=daily_partitions, name="model_bundle")
def written_bundle(context: dg.AssetExecutionContext, artifacts: ArtifactStore, model_store: ModelStore) -> None:
    """Stands in for the bundle step: a complete bundle in the store and this run's reference to it."""
    uri = publish_version(model_store, VERSION, partition=context.partition_key)
    ref = artifacts.layout(context.run).model_bundle(context.partition_key).ref
    storage.write_bytes(ref, BundleRef(version=VERSION, uri=uri).to_json())


@pytest.mark.slow  # GitHub's pauses between requests, or a materialization: seconds
def test_a_failed_release_step_stores_no_token_in_any_instance_file(github_standin, tmp_path, monkeypatch):
    use_env(monkeypatch, github_env(tmp_path / "data", github_standin, BROKEN_TOKEN))
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home), overrides={"event_log_storage": PROJECT_EVENT_LOG}) as instance:
        result = dg.materialize(
            [written_bundle, model_release],
            partition_key=PARTITION,
            resources=build_resources(),
            instance=instance,
            raise_on_error=False,
        )
        assert not result.success
        failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
        # A refused header is permanent: one failure at once, not three retries over two minutes.
        assert [e.step_key for e in failures] == ["model_release"] and retries == []
        description = failures[0].step_failure_data.user_failure_data.description
        assert "holds characters an HTTP header cannot carry" in description
        stored = "".join(str(entry) for entry in instance.all_logs(result.run_id))
        assert "holds characters an HTTP header cannot carry" in stored

    # Every file the instance wrote: the run's event log shard, the run index, the compute logs.
    files = [path for path in home.rglob("*") if path.is_file()]
    compute_logs = [path for path in files if path.suffix == ".err"]
    assert any("cannot carry" in path.read_text(errors="replace") for path in compute_logs), compute_logs
    assert any(path.name == "index.db" for path in files)
    for path in files:
        data = path.read_bytes()
        assert not any(part.encode() in data for part in TOKEN_PARTS), path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_a_password_in_the_tracking_uri_never_reaches_the_cli(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow")
    use_env(monkeypatch, local_env(tmp_path))
    monkeypatch.setenv("RECSYS_MLFLOW_TRACKING_URI", f"http://ops:hunter2-tracking-pw@127.0.0.1:{closed_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the server is down; one attempt shows it
    publish_version(build_resources()["model_store"], VERSION)

    assert main(["models", "promote", VERSION]) == 1
    captured = capsys.readouterr()
    assert "hunter2-tracking-pw" not in captured.out + captured.err
    last = captured.err.strip().splitlines()[-1]
    assert "http://ops:[redacted]@127.0.0.1" in last
