"""The release path on the cloud backends: S3 bundle, Secret Manager credentials, GitHub pull request.

Every backend is a local stand-in reached by its real client: moto (checking signatures, so the run
only succeeds with the key pair from Secret Manager), the fake Secret Manager, and the fake GitHub
(accepting only the token from Secret Manager). After the run, every record Dagster kept is searched
for the secret values.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any, get_args

import dagster as dg
import pytest

from recsys_assets.cli.models import run_models
from recsys_assets.cli.pipeline import materialize_partition
from recsys_assets.domain.families.registry import Family
from recsys_assets.domain.synthetic import SMALL_SPEC
from recsys_assets.resources.gcp_secrets import GcpSecretManagerStore
from recsys_assets.resources.github import GitHubReleasePublisher
from recsys_assets.resources.registry import ModelRegistry
from recsys_assets.resources.s3_model_store import S3ModelStore
from recsys_assets.sensors.releases import build_release_pull_requests
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.environment import FAST_SELECTION, FORCED_SELECTION, local_env, seed
from recsys_assets_tests.support.standins.github import TOKEN, GitHubStandIn
from recsys_assets_tests.support.standins.s3 import S3StandIn
from recsys_assets_tests.support.standins.secret_manager import SecretManagerStandIn

pytestmark = pytest.mark.slow

PARTITION = SMALL_SPEC.end_date.isoformat()
S3_PREFIX = "recsys"
POINTER_PATH = f"models/{SETTINGS.model_name}.json"


def cloud_resources(
    tmp_path: Path, s3: S3StandIn, secret_manager: SecretManagerStandIn, github: GitHubStandIn
) -> tuple[dict[str, Any], list[str]]:
    """Resources built from the environment exactly as a deployment would, and the secret values in play."""
    key_id, secret_key = s3.require_signed_requests()
    secret_manager.add("aws-access-key-id", "stale-key-id")  # version 1, rotated away
    secret_manager.add("aws-access-key-id", key_id)
    secret_manager.add("aws-secret-access-key", secret_key)
    secret_manager.add("github-token", TOKEN)
    env = local_env(
        tmp_path,
        RECSYS_SECRETS="gcp",
        RECSYS_GCP_PROJECT=secret_manager.project,
        RECSYS_SECRETS_ENDPOINT=secret_manager.endpoint,
        RECSYS_MODEL_STORE="s3",
        RECSYS_S3_BUCKET=s3.bucket,
        RECSYS_S3_PREFIX=S3_PREFIX,
        RECSYS_S3_ENDPOINT_URL=s3.endpoint_url,
        RECSYS_S3_REGION=s3.region,
        RECSYS_RELEASE="github",
        RECSYS_GITHUB_REPOSITORY=github.repository,
        RECSYS_GITHUB_BASE_URL=github.base_url,
        RECSYS_GITHUB_TOKEN_SECRET="github-token",
    )
    from recsys_assets.resources import build_resources

    resources = build_resources(env)
    assert isinstance(resources["secrets"], GcpSecretManagerStore)
    assert isinstance(resources["model_store"], S3ModelStore)
    assert isinstance(resources["release_publisher"], GitHubReleasePublisher)
    # GitHub's write pacing is for github.com; the stand-in has no rate limits.
    resources["release_publisher"] = resources["release_publisher"].model_copy(
        update={"seconds_between_requests": 0, "seconds_between_writes": 0}
    )
    return resources, [key_id, secret_key, TOKEN]


def materialization_metadata(instance: dg.DagsterInstance, asset: str) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None, f"{asset} was never materialized"
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def everything_dagster_kept(instance: dg.DagsterInstance) -> dict[str, str]:
    """Every run, job snapshot, event log entry and metadata value, serialized, plus every file in DAGSTER_HOME."""
    records: dict[str, str] = {}
    for run in instance.get_runs():
        records[f"run {run.run_id}"] = dg.serialize_value(run)
        if run.job_snapshot_id:
            records[f"job snapshot {run.run_id}"] = dg.serialize_value(instance.get_job_snapshot(run.job_snapshot_id))
        for index, entry in enumerate(instance.all_logs(run.run_id)):
            records[f"event {run.run_id}/{index}"] = dg.serialize_value(entry)
            materialization = entry.asset_materialization
            for name, value in (materialization.metadata if materialization else {}).items():
                records[f"metadata {materialization.asset_key.to_user_string()}.{name}"] = repr(value.value)
    for path in Path(instance.root_directory).rglob("*"):
        if path.is_file():
            records[f"file {path}"] = path.read_bytes().decode("utf-8", errors="replace")
    return records


def test_release_path_opens_a_pull_request_and_no_secret_reaches_any_record(
    tmp_path, s3_standin, secret_manager_standin, github_standin
):
    resources, secret_values = cloud_resources(tmp_path, s3_standin, secret_manager_standin, github_standin)
    seed(resources)
    with dg.instance_for_test() as instance:
        outcome = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
        assert outcome.success, outcome.failures
        version = outcome.bundle.version

        # The bundle is in S3, complete, under the configured prefix.
        bundle = f"{S3_PREFIX}/models/{SETTINGS.model_name}/{version}/"
        assert outcome.bundle.uri == f"s3://{s3_standin.bucket}/{bundle}"
        manifest_bytes = s3_standin.read(bundle + "manifest.json")
        manifest = json.loads(manifest_bytes)
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(s3_standin.read(bundle + name)).hexdigest() == digest

        # The release is one open pull request whose only change is the pointer file.
        branch = f"release/{SETTINGS.model_name}/{version}"
        [pull] = github_standin.open_pulls()
        assert pull["head"]["ref"] == branch and pull["base"]["ref"] == "main"
        assert pull["title"] == f"Release {SETTINGS.model_name} {version}"
        assert "| ndcg@10 | — |" in pull["body"] and f"s3://{s3_standin.bucket}/{bundle}model_card.md" in pull["body"]
        pointer = json.loads(github_standin.files[branch][POINTER_PATH])
        assert pointer["version"] == version and pointer["uri"] == outcome.bundle.uri
        assert pointer["manifest_sha256"] == hashlib.sha256(manifest_bytes).hexdigest()
        release = materialization_metadata(instance, "model_release")
        assert release["pull_request"] == pull["html_url"] and release["created"] is True
        # Proposed: the champion moves only when the pull request is merged.
        assert release["state"] == "proposed" and release["champion"] == "none"
        assert f"{S3_PREFIX}/models/{SETTINGS.model_name}/champion.json" not in s3_standin.keys()

        # Credentials were read from Secret Manager (the rotated key id at its latest version).
        assert set(secret_manager_standin.requests) == {
            f"projects/{secret_manager_standin.project}/secrets/{name}/versions/latest"
            for name in ("aws-access-key-id", "aws-secret-access-key", "github-token")
        }
        assert all(call.headers["Authorization"] == f"token {TOKEN}" for call in github_standin.calls)
        # ...and the runs record which versions, by name only.
        assert materialization_metadata(instance, "model_bundle")["credentials_used"] == [
            "aws-access-key-id@2",
            "aws-secret-access-key@1",
        ]
        assert release["credentials_used"] == ["github-token@1"]

        records = everything_dagster_kept(instance)
        assert any(version in text for text in records.values())  # the search does find what is there
        assert any(name.startswith("metadata model_release.") for name in records)
        leaks = [
            (where, value[:4] + "…") for where, text in records.items() for value in secret_values if value in text
        ]
        assert leaks == [], f"secret values found in: {leaks}"


def test_rerunning_the_release_returns_the_open_pull_request(
    tmp_path, s3_standin, secret_manager_standin, github_standin
):
    resources, _ = cloud_resources(tmp_path, s3_standin, secret_manager_standin, github_standin)
    seed(resources)
    with dg.instance_for_test() as instance:
        outcome = materialize_partition(PARTITION, resources, instance, run_config=FAST_SELECTION)
        assert outcome.success, outcome.failures
        first = materialization_metadata(instance, "model_release")

        from recsys_assets.definitions import ASSETS

        again = dg.materialize(
            ASSETS,
            selection=["model_release"],
            resources=resources,
            instance=instance,
            partition_key=PARTITION,
        )
        assert again.success
        second = materialization_metadata(instance, "model_release")
        assert second["created"] is False and second["pull_request"] == first["pull_request"]
        assert len(github_standin.pulls) == 1 and github_standin.open_pulls()[0]["html_url"] == first["pull_request"]
        assert len(github_standin.calls_to("POST", "/pulls")) == 1


def test_promotion_follows_the_merged_pull_request(
    tmp_path, s3_standin, secret_manager_standin, github_standin, capsys
):
    """The issue's acceptance run: propose, merge -> champion, close -> rejected, rollback, list."""
    resources, _ = cloud_resources(tmp_path, s3_standin, secret_manager_standin, github_standin)
    seed(resources)
    store = resources["model_store"]
    registry = ModelRegistry(store, SETTINGS.model_name)

    def tick() -> list[tuple[str, str]]:
        sensor_resources = {key: resources[key] for key in ("model_store", "release_publisher", "tracker")}
        with dg.build_sensor_context(resources=sensor_resources) as context:
            data = build_release_pull_requests(SETTINGS).evaluate_tick(context)
        return [(e.metadata["version"].value, e.metadata["state"].value) for e in data.asset_events]  # type: ignore[union-attr]

    def champion() -> str | None:
        pointer = store.read_champion(SETTINGS.model_name)
        return pointer["version"] if pointer else None

    def cli(command: str, version: str | None = None) -> str:
        args = argparse.Namespace(models_command=command, version=version, pointer_path=POINTER_PATH)
        assert run_models(args, resources, SETTINGS.model_name) == 0
        return capsys.readouterr().out

    with dg.instance_for_test() as instance:

        def run() -> tuple[str, str]:
            # Forced: each run retrains the unchanged window (it would be skipped otherwise).
            outcome = materialize_partition(PARTITION, resources, instance, run_config=FORCED_SELECTION)
            assert outcome.success, outcome.failures
            return outcome.bundle.version, materialization_metadata(instance, "model_release")["pull_request"]

        v1, pr1 = run()
        assert registry.status(v1).state == "proposed" and champion() is None and tick() == []  # type: ignore[union-attr]
        github_standin.merge(pr1)
        assert tick() == [(v1, "released")] and champion() == v1
        # Rerunning the release of a merged version reports it and proposes nothing.
        from recsys_assets.definitions import ASSETS

        dg.materialize(
            ASSETS, selection=["model_release"], resources=resources, instance=instance, partition_key=PARTITION
        )
        rerun = materialization_metadata(instance, "model_release")
        assert rerun["state"] == "released" and rerun["created"] is False and rerun["pull_request"] == pr1
        assert len(github_standin.pulls) == 1

        v2, pr2 = run()
        assert (
            json.loads(store.get_object(f"models/{SETTINGS.model_name}/{v2}/manifest.json"))["champion"]["version"]
            == v1
        )
        github_standin.close(pr2)
        assert tick() == [(v2, "rejected")] and champion() == v1

        v3, pr3 = run()
        release = materialization_metadata(instance, "model_release")
        assert release["state"] == "proposed" and release["champion"] == v1 and release["pending"] == [v3]
        assert f"| {v2} | rejected |" in release["versions"] and f"| {v1} | released |" in release["versions"]
        github_standin.merge(pr3)
        assert tick() == [(v3, "released"), (v1, "superseded")] and champion() == v3

    # Roll back to v1: a new pull request, and the champion moves only when it is merged.
    out = cli("rollback")
    [rollback_pr] = github_standin.open_pulls()
    assert f"{v1} proposed (opened): {rollback_pr['html_url']}" in out and champion() == v3
    assert rollback_pr["head"]["ref"] == f"release/{SETTINGS.model_name}/{v1}-r2"
    assert json.loads(github_standin.files[rollback_pr["head"]["ref"]][POINTER_PATH])["version"] == v1
    github_standin.merge(rollback_pr["html_url"])
    assert tick() == [(v1, "released"), (v3, "superseded")] and champion() == v1

    listing = cli("list")
    assert listing.startswith(f"champion: {v1}")
    for version, state, pull in [
        (v1, "released", rollback_pr["html_url"]),
        (v2, "rejected", pr2),
        (v3, "superseded", pr3),
    ]:
        row = next(line for line in listing.splitlines() if line.startswith(f"| {version} |"))
        # The family column names whichever family each run selected.
        assert f"| {state} |" in row and pull in row and row.split("|")[4].strip() in get_args(Family)
