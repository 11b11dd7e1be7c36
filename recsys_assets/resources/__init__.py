"""Resource wiring: every backend is one row of `BACKENDS`, chosen by the settings field named after its resource.

Each resource's selector defaults to the embedded option, so a machine with no cloud runs the whole
graph, and production switches backends by configuration only:

| resource            | selector                    | embedded default | cloud option |
|---------------------|-----------------------------|------------------|--------------|
| warehouse           | RECSYS_WAREHOUSE            | duckdb           | bigquery     |
| item_catalogue      | RECSYS_WAREHOUSE (same)     | duckdb           | bigquery     |
| recommendation_store| RECSYS_WAREHOUSE (same)     | duckdb           | bigquery     |
| model_store         | RECSYS_MODEL_STORE          | local            | s3           |
| secrets             | RECSYS_SECRETS              | local            | gcp          |
| release_publisher   | RECSYS_RELEASE              | local            | github       |
| training_launcher   | RECSYS_TRAINING_LAUNCHER    | subprocess       | docker, vertex |
| tracker             | RECSYS_MLFLOW_TRACKING_URI  | none             | mlflow       |

`artifacts` (a folder, s3:// or gs://, by its URI) and `alerts` (Slack and/or a webhook) have one
implementation each and are built beside them. Cloud clients are imported by their builders only,
so the embedded default never loads them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recsys_assets.resources.alerts import AlertNotifier
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.catalogue import DuckDBItemCatalogue
from recsys_assets.resources.model_store import LocalModelStore
from recsys_assets.resources.recommendation_store import DuckDBRecommendationStore
from recsys_assets.resources.release import LocalReleasePublisher
from recsys_assets.resources.secrets import LocalSecretStore, SecretStore
from recsys_assets.resources.tracking import MlflowTracker, NoExperimentTracker
from recsys_assets.resources.training_launcher import (
    DockerTrainingLauncher,
    SubprocessTrainingLauncher,
    VertexTrainingLauncher,
)
from recsys_assets.resources.warehouse import DuckDBWarehouse
from recsys_assets.settings import VERTEX_PREFIX, Settings, configured


@dataclass(frozen=True)
class Backend:
    """One implementation of a resource: how the settings build it, and the kind icon its assets show."""

    # (settings, the resources built before this one: `secrets` comes first) -> the resource
    build: Callable[[Settings, Mapping[str, Any]], Any]
    kind: str | None = None


def _env_backed(settings: Settings, field: str) -> Any:
    """The field's value; a value from the process environment stays a `dg.EnvVar`, so the definitions
    (and the UI's resource view) record the variable's name rather than its value."""
    import dagster as dg

    value = getattr(settings, field)
    return dg.EnvVar(settings.env_name(field)) if value is not None and settings.from_process(field) else value


def _secret_ref(reference: str | None) -> tuple[str | None, str]:
    """`name` or `name@version` (validated by the settings) as (name, version); None: no secret."""
    if reference is None:
        return None, "latest"
    name, _, version = reference.partition("@")
    return name, version or "latest"


def _configured(model: type[Any], settings: Settings, selector: str, fields: Mapping[str, str], **fixed: Any) -> Any:
    """`model` with each of its `fields` from the settings field named beside it, plus `fixed` values; a value
    the model refuses is a one-line ConfigurationError naming the variable it came from."""
    values = {field: getattr(settings, setting) for field, setting in fields.items()}
    names = {field: settings.env_name(setting) for field, setting in fields.items()}
    return configured(model, {**values, **fixed}, names=names, selector=selector)


def _bigquery_warehouse(settings: Settings, table_field: str = "bq_table") -> Any:
    from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse

    settings.required("bq_project", "RECSYS_WAREHOUSE=bigquery")
    settings.required("bq_dataset", "RECSYS_WAREHOUSE=bigquery")
    fields = {
        "project": "bq_project",
        "dataset": "bq_dataset",
        "table": table_field,
        "location": "bq_location",
        "endpoint": "bq_endpoint",
        "storage_endpoint": "bq_storage_endpoint",
    }
    return configured(
        BigQueryWarehouse,
        {
            **{field: _env_backed(settings, setting) for field, setting in fields.items()},
            # Credentials never travel over plaintext HTTP; such an endpoint is a local emulator.
            "anonymous_credentials": (settings.bq_endpoint or "").startswith("http://"),
            "use_storage_api": settings.bq_use_storage_api,
        },
        names={field: settings.env_name(setting) for field, setting in fields.items()},
    )


def _duckdb_warehouse(settings: Settings, built: Mapping[str, Any]) -> DuckDBWarehouse:
    return DuckDBWarehouse(
        path=str(settings.warehouse_path),
        table=settings.events_table,
        lock_timeout_seconds=settings.duckdb_lock_timeout_seconds,
        pairs_memory_mib=settings.duckdb_pairs_memory_mib,
    )


def _duckdb_catalogue(settings: Settings, built: Mapping[str, Any]) -> DuckDBItemCatalogue:
    return DuckDBItemCatalogue(
        path=str(settings.warehouse_path),
        table=settings.items_table,
        lock_timeout_seconds=settings.duckdb_lock_timeout_seconds,
    )


def _bigquery_catalogue(settings: Settings, built: Mapping[str, Any]) -> Any:
    from recsys_assets.resources.bigquery_catalogue import BigQueryItemCatalogue

    return BigQueryItemCatalogue(warehouse=_bigquery_warehouse(settings, "items_table"))


def _duckdb_recommendations(settings: Settings, built: Mapping[str, Any]) -> DuckDBRecommendationStore:
    return DuckDBRecommendationStore(
        path=str(settings.warehouse_path),
        table=settings.recommendations_table,
        lock_timeout_seconds=settings.duckdb_lock_timeout_seconds,
    )


def _bigquery_recommendations(settings: Settings, built: Mapping[str, Any]) -> Any:
    from recsys_assets.resources.bigquery_recommendation_store import BigQueryRecommendationStore

    return BigQueryRecommendationStore(warehouse=_bigquery_warehouse(settings, "recommendations_table"))


def _gcp_secrets(settings: Settings, built: Mapping[str, Any]) -> SecretStore:
    # Imported here so the embedded default does not load gRPC and the Google client.
    from recsys_assets.resources.gcp_secrets import GcpSecretManagerStore

    settings.required("gcp_project", "RECSYS_SECRETS=gcp")
    return _configured(
        GcpSecretManagerStore,
        settings,
        "RECSYS_SECRETS=gcp",
        {"project": "gcp_project", "endpoint": "secrets_endpoint"},
    )


def _s3_model_store(settings: Settings, built: Mapping[str, Any]) -> Any:
    from recsys_assets.resources.s3_model_store import S3ModelStore

    settings.required("s3_bucket", "RECSYS_MODEL_STORE=s3")
    access_key, access_key_version = _secret_ref(settings.s3_access_key_secret)
    secret_key, secret_key_version = _secret_ref(settings.s3_secret_key_secret)
    return _configured(
        S3ModelStore,
        settings,
        "RECSYS_MODEL_STORE=s3",
        {"bucket": "s3_bucket", "region_name": "s3_region", "endpoint_url": "s3_endpoint_url"},
        secrets=built["secrets"],
        prefix=settings.s3_prefix.strip("/"),
        access_key_secret=access_key,
        access_key_secret_version=access_key_version,
        secret_key_secret=secret_key,
        secret_key_secret_version=secret_key_version,
    )


def _github_release(settings: Settings, built: Mapping[str, Any]) -> Any:
    from recsys_assets.resources.github import GitHubReleasePublisher

    settings.required("github_repository", "RECSYS_RELEASE=github")
    token, token_version = _secret_ref(settings.github_token_secret)
    return _configured(
        GitHubReleasePublisher,
        settings,
        "RECSYS_RELEASE=github",
        {"repository": "github_repository", "base_branch": "github_base_branch", "base_url": "github_base_url"},
        secrets=built["secrets"],
        token_secret=token,
        token_secret_version=token_version,
    )


def _docker_launcher(settings: Settings, built: Mapping[str, Any]) -> DockerTrainingLauncher:
    """The pinned image on the local engine; a local artefact root is mounted at the same path, and the
    container runs as the host user so the files it writes stay the user's."""
    settings.required("image", "RECSYS_TRAINING_LAUNCHER=docker")
    artifacts = settings.artifacts_root
    local_root = None if "://" in artifacts else str(Path(artifacts).resolve())
    return _configured(
        DockerTrainingLauncher,
        settings,
        "RECSYS_TRAINING_LAUNCHER=docker",
        {"image_uri": "image", "network": "docker_network"},
        artifact_root=local_root,
        user=f"{os.getuid()}:{os.getgid()}" if local_root else None,
    )


def _vertex_launcher(settings: Settings, built: Mapping[str, Any]) -> VertexTrainingLauncher:
    """Every `VertexTrainingLauncher` field `f` from `RECSYS_VERTEX_<F>` (`labels`, `worker_env` as JSON)."""
    fields = VertexTrainingLauncher.model_fields
    values = {
        "image_uri": settings.required("image", "RECSYS_TRAINING_LAUNCHER=vertex"),
        **settings.group(VERTEX_PREFIX, fields, exclude=("image_uri",)),
    }
    names = {name: VERTEX_PREFIX + name.upper() for name in fields} | {"image_uri": "RECSYS_IMAGE"}
    return configured(VertexTrainingLauncher, values, names=names, selector="RECSYS_TRAINING_LAUNCHER=vertex")


# Every backend of every resource, built in this order (later ones read their credentials from `secrets`).
# A resource's backend is `getattr(settings, resource)`: the settings field named after it.
BACKENDS: dict[str, dict[str, Backend]] = {
    "secrets": {
        "local": Backend(lambda s, _: LocalSecretStore(directory=str(s.secrets_dir) if s.secrets_dir else None)),
        "gcp": Backend(_gcp_secrets),
    },
    "warehouse": {
        "duckdb": Backend(_duckdb_warehouse, "duckdb"),
        "bigquery": Backend(lambda s, _: _bigquery_warehouse(s), "bigquery"),
    },
    "item_catalogue": {
        "duckdb": Backend(_duckdb_catalogue, "duckdb"),
        "bigquery": Backend(_bigquery_catalogue, "bigquery"),
    },
    "recommendation_store": {
        "duckdb": Backend(_duckdb_recommendations, "duckdb"),
        "bigquery": Backend(_bigquery_recommendations, "bigquery"),
    },
    "model_store": {
        "local": Backend(lambda s, _: LocalModelStore(root=str(s.model_store_root)), "filesystem"),
        "s3": Backend(_s3_model_store, "s3"),
    },
    "release_publisher": {
        "local": Backend(lambda s, _: LocalReleasePublisher(root=str(s.release_root)), "filesystem"),
        "github": Backend(_github_release, "github"),
    },
    "training_launcher": {
        "subprocess": Backend(lambda s, _: SubprocessTrainingLauncher(), "python"),
        "docker": Backend(_docker_launcher, "docker"),
        "vertex": Backend(_vertex_launcher, "vertexai"),
    },
    "tracker": {
        "none": Backend(lambda s, _: NoExperimentTracker()),
        # The URI may hold a password: from the process it stays an EnvVar, out of the UI's resource view.
        "mlflow": Backend(lambda s, _: MlflowTracker(tracking_uri=_env_backed(s, "mlflow_tracking_uri")), "mlflow"),
    },
}


def backend(resource: str, settings: Settings) -> Backend:
    """The backend `settings` select for `resource`."""
    return BACKENDS[resource][getattr(settings, resource)]


def build_alerts(settings: Settings, secrets: SecretStore) -> AlertNotifier:
    """Run-failure alerts to Slack and/or a JSON webhook (both optional), with links into the UI."""
    fields = {
        "slack_channel": "alert_slack_channel",
        "slack_token_secret": "alert_slack_token_secret",
        "slack_api_url": "slack_api_url",
        "webhook_url_secret": "alert_webhook_secret",
        "ui_url": "ui_url",
    }
    return _configured(AlertNotifier, settings, "run-failure alerts", fields, secrets=secrets)


def build_resources(
    settings: Settings | Mapping[str, str] | None = None, only: Collection[str] | None = None
) -> dict[str, Any]:
    """Every resource the asset graph needs (or `only` those), each backend chosen by its settings field.

    `settings`: read settings, or an environment to read them from (default: this process's, read now).
    With `only`, nothing else is built (`secrets` too when they need it), so nothing else's settings
    are required.
    """
    if not isinstance(settings, Settings):
        settings = Settings.from_env(settings)
    built: dict[str, Any] = {}
    for resource in BACKENDS:
        if only is None or resource in only or resource == "secrets":
            built[resource] = backend(resource, settings).build(settings, built)
    if only is not None:
        return {name: built[name] for name in only}
    built["artifacts"] = ArtifactStore(root_uri=settings.artifacts_root)
    built["alerts"] = build_alerts(settings, built["secrets"])
    return built


# What the online service reads (`python -m recsys_assets serve`): a serving deployment needs no
# training, release or alert settings, and its model store credentials can name a read-only key pair.
SERVING_RESOURCES = ("model_store", "item_catalogue")


def build_serving_resources(settings: Settings | Mapping[str, str] | None = None) -> dict[str, Any]:
    """The model store and the item catalogue, for the online service."""
    return build_resources(settings, only=SERVING_RESOURCES)
