"""MLflow mirrors the registry: runs with parameters, trials and metrics, model versions, states, champion alias."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from recsys_assets.domain.records import Manifest, SearchTrial, TrainingReport
from recsys_assets.resources import build_resources
from recsys_assets.resources.model_store import LocalModelStore
from recsys_assets.resources.registry import ModelRegistry, follow_base_pointer, poll_pull_requests, propose_release
from recsys_assets.resources.release import LocalReleasePublisher
from recsys_assets.resources.tracking import MlflowTracker, NoExperimentTracker
from recsys_assets.settings import SETTINGS
from recsys_assets_tests.support.bundles import publish_version

POINTER = f"models/{SETTINGS.model_name}.json"


def test_the_tracker_is_a_resource_chosen_by_the_tracking_uri(tmp_path):
    for unset in ({}, {"RECSYS_MLFLOW_TRACKING_URI": " "}):
        assert isinstance(build_resources({"RECSYS_DATA_DIR": str(tmp_path), **unset})["tracker"], NoExperimentTracker)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = build_resources({"RECSYS_DATA_DIR": str(tmp_path), "RECSYS_MLFLOW_TRACKING_URI": uri})["tracker"]
    assert isinstance(tracker, MlflowTracker) and tracker.tracking_uri == uri


def test_a_tracking_uri_from_the_process_stays_a_variable_name_in_the_definitions(tmp_path, monkeypatch):
    # A server URI may carry a password: the code location's resource config shows the name only.
    monkeypatch.setenv("RECSYS_MLFLOW_TRACKING_URI", "http://ops:hunter2@127.0.0.1:5000")
    tracker = build_resources({**os.environ, "RECSYS_DATA_DIR": str(tmp_path)})["tracker"]
    assert tracker.tracking_uri == dg.EnvVar("RECSYS_MLFLOW_TRACKING_URI")
    assert "hunter2" not in repr(tracker)


@pytest.mark.slow  # MLflow creates its SQLite schema through migrations: seconds, not milliseconds
def test_mlflow_shows_the_same_history_as_the_registry(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="the optional mlflow extra is not installed")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.chdir(tmp_path)  # MLflow's default artefact folder, should anything write one
    store = LocalModelStore(root=str(tmp_path / "store"))
    publisher = LocalReleasePublisher(root=str(tmp_path / "store"))
    tracker = MlflowTracker(tracking_uri=uri)
    registry = ModelRegistry(store, SETTINGS.model_name, tracker)

    for version, ndcg in (("v1", 0.20), ("v2", 0.25)):
        uri_of_bundle = publish_version(store, version, ndcg=ndcg)
        manifest = Manifest.from_dict(store.read_manifest(SETTINGS.model_name, version))
        trials = [
            SearchTrial(
                family=manifest.model.family,
                params=manifest.model.params,
                validation_ndcg=ndcg - 0.01 * i,
                k=10,
                seconds=1.0,
            )
            for i in range(2)
        ]
        report = TrainingReport(
            model=manifest.model,
            protocol=manifest.protocol,
            search=trials,
            search_seconds=1.5,
            training_seconds=2.0,
            users=50,
            items=40,
            interactions=700,
            host="test",
        )
        tracker.log_version(manifest, report, uri_of_bundle)

    def sync() -> None:
        proposed = [s for s in registry.statuses().values() if s.state == "proposed"]
        poll_pull_requests(registry, publisher, proposed)
        follow_base_pointer(registry, publisher, POINTER)

    publisher.merge(propose_release(registry, publisher, "v1", POINTER, "run").identifier, POINTER)
    sync()
    publisher.close(propose_release(registry, publisher, "v2", POINTER, "run").identifier)
    sync()

    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = {v.tags["bundle_version"]: v for v in client.search_model_versions(f"name='{SETTINGS.model_name}'")}
    assert {name: v.tags["state"] for name, v in versions.items()} == {"v1": "released", "v2": "rejected"}
    assert client.get_model_version_by_alias(SETTINGS.model_name, "champion").tags["bundle_version"] == "v1"

    run = client.get_run(versions["v2"].run_id)
    assert run.data.params["factors"] == "24" and run.data.metrics["holdout_ndcg_at_10"] == pytest.approx(0.25)
    experiment = client.get_experiment_by_name(SETTINGS.model_name)
    children = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    trial_scores = sorted(c.data.metrics["validation_ndcg_at_10"] for c in children)
    assert trial_scores == pytest.approx([0.24, 0.25])

    # A revert to no pointer leaves no champion: the alias goes too.
    (tmp_path / "store/serving-main" / POINTER).unlink()
    sync()
    assert "champion" not in client.get_registered_model(SETTINGS.model_name).aliases
    assert client.get_model_version(SETTINGS.model_name, versions["v1"].version).tags["state"] == "rolled_back"
