"""Experiment tracking: the `tracker` resource, MLflow when `RECSYS_MLFLOW_TRACKING_URI` is set.

Each bundle becomes an MLflow run (parameters, holdout metrics, one child run per search trial)
and a version of the registered model named after the project's model, tagged with the bundle
version. Every registry state change is mirrored as the model version's `state` tag, and the
`champion` alias follows the released version. Without the setting the tracker does nothing and
MLflow is never imported.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any

import dagster as dg
from pydantic import Field, PrivateAttr

from recsys_assets.domain.records import Manifest, TrainingReport

CHAMPION_ALIAS = "champion"
BUNDLE_VERSION_TAG = "bundle_version"


class ExperimentTracker(dg.ConfigurableResource, ABC):
    """Where bundles and the registry's state changes are mirrored for experiment tracking."""

    @abstractmethod
    def log_version(self, manifest: Manifest, report: TrainingReport, bundle_uri: str) -> None:
        """Record a new bundle: its parameters, search trials and holdout metrics."""

    @abstractmethod
    def record_state(self, model_name: str, version: str, state: str) -> None:
        """Mirror a registry state change of `version`."""

    @abstractmethod
    def follow_champion(self, model_name: str, champion: str | None) -> None:
        """Mark `champion` as the released version (none: no champion)."""


class NoExperimentTracker(ExperimentTracker):
    """No experiment tracking (`RECSYS_MLFLOW_TRACKING_URI` unset): the model registry is the only record."""

    def log_version(self, manifest: Manifest, report: TrainingReport, bundle_uri: str) -> None:
        pass

    def record_state(self, model_name: str, version: str, state: str) -> None:
        pass

    def follow_champion(self, model_name: str, champion: str | None) -> None:
        pass


class MlflowTracker(ExperimentTracker):
    """Logs bundles to MLflow and mirrors the registry's states and champion there."""

    tracking_uri: str = Field(description="MLflow tracking server or database, also used as the model registry.")
    _client: Any = PrivateAttr(default=None)

    def client(self) -> Any:
        if self._client is None:
            # Imported on first use: MLflow is an optional extra (`pip install .[mlflow]`).
            from mlflow import MlflowClient  # pyright: ignore[reportMissingImports] (optional extra)

            # A dg.EnvVar until Dagster resolves it: the CLI uses resources outside Dagster.
            uri = self.tracking_uri.get_value() if isinstance(self.tracking_uri, dg.EnvVar) else self.tracking_uri
            self._client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        return self._client

    def log_version(self, manifest: Manifest, report: TrainingReport, bundle_uri: str) -> None:
        """One run with the bundle's parameters, search trials and holdout metrics; registered as a model version."""
        from mlflow.entities import Metric, Param  # pyright: ignore[reportMissingImports]
        from mlflow.exceptions import MlflowException  # pyright: ignore[reportMissingImports]

        client, now = self.client(), int(time.time() * 1000)
        experiment = client.get_experiment_by_name(manifest.model_name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(manifest.model_name)
        tags = {BUNDLE_VERSION_TAG: manifest.version, "dagster_run_id": manifest.dagster.run_id}
        run = client.create_run(experiment_id, run_name=manifest.version, tags=tags)
        params = {"family": manifest.model.family, **manifest.model.params}
        params.update(window_start=manifest.data.window.start, window_end=manifest.data.window.end)
        # MLflow refuses "@" in names: ndcg@10 is logged as holdout_ndcg_at_10.
        metrics = [
            Metric(f"holdout_{name.replace('@', '_at_')}", value, now, 0)
            for name, value in manifest.metrics.model.items()
        ]
        client.log_batch(
            run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()], metrics=metrics, synchronous=True
        )
        for step, trial in enumerate(report.search):
            child = client.create_run(
                experiment_id,
                run_name=f"trial {step} ({trial.family}, {trial.state})",
                tags={"mlflow.parentRunId": run.info.run_id},
            )
            client.log_batch(
                child.info.run_id,
                params=[Param(k, str(v)) for k, v in {"family": trial.family, **trial.params}.items()],
                metrics=[Metric(f"validation_ndcg_at_{trial.k}", trial.validation_ndcg, now, step)],
                synchronous=True,
            )
            client.set_terminated(child.info.run_id)
        client.set_terminated(run.info.run_id)
        try:
            client.create_registered_model(manifest.model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        client.create_model_version(manifest.model_name, bundle_uri, run_id=run.info.run_id, tags=tags)

    def _model_versions(self, model_name: str) -> dict[str, str]:
        """Bundle version -> MLflow model version number, matched in Python (no filter string is built)."""
        return {
            found.tags[BUNDLE_VERSION_TAG]: found.version
            for found in self.client().search_model_versions(max_results=10000)
            if found.name == model_name and BUNDLE_VERSION_TAG in found.tags
        }

    def record_state(self, model_name: str, version: str, state: str) -> None:
        number = self._model_versions(model_name).get(version)
        if number is not None:
            self.client().set_model_version_tag(model_name, number, "state", state)

    def follow_champion(self, model_name: str, champion: str | None) -> None:
        """Point the `champion` alias at the released version (remove it when there is none)."""
        numbers = self._model_versions(model_name)
        if not numbers:
            return
        client = self.client()
        if champion in numbers:
            client.set_registered_model_alias(model_name, CHAMPION_ALIAS, numbers[champion])  # type: ignore[index]
        elif CHAMPION_ALIAS in client.get_registered_model(model_name).aliases:
            client.delete_registered_model_alias(model_name, CHAMPION_ALIAS)
