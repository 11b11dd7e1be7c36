"""Resource wiring: one function picks every backend from environment variables.

Each backend has its own selector variable whose default is the embedded option, so a machine
with no cloud runs the whole graph, and production switches backends by configuration only:

| resource            | selector                    | embedded default | cloud option |
|---------------------|-----------------------------|------------------|--------------|
| warehouse           | RECSYS_WAREHOUSE            | duckdb           | bigquery     |
| item_catalogue      | RECSYS_WAREHOUSE (same)     | duckdb           | bigquery     |
| model_store         | RECSYS_MODEL_STORE          | local            | s3           |
| secrets             | RECSYS_SECRETS              | local            | gcp          |
| release_publisher   | RECSYS_RELEASE              | local            | github       |
| training_launcher   | RECSYS_TRAINING_LAUNCHER    | subprocess       | docker, vertex |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.domain.names import safe_name
from recsys_assets.resources.alerts import AlertNotifier
from recsys_assets.resources.artifacts import ArtifactStore
from recsys_assets.resources.catalogue import DuckDBItemCatalogue, ItemCatalogue
from recsys_assets.resources.model_store import LocalModelStore, ModelStore
from recsys_assets.resources.release import LocalReleasePublisher, ReleasePublisher
from recsys_assets.resources.secrets import LocalSecretStore, SecretStore
from recsys_assets.resources.training_launcher import (
    DockerTrainingLauncher,
    SubprocessTrainingLauncher,
    TrainingLauncher,
    VertexTrainingLauncher,
)
from recsys_assets.resources.warehouse import DuckDBWarehouse, Warehouse
from recsys_assets.settings import Settings

# Resource name -> (selector variable, default, options): read by the builders and by `backend_of`.
SELECTORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "warehouse": ("RECSYS_WAREHOUSE", "duckdb", ("duckdb", "bigquery")),
    "secrets": ("RECSYS_SECRETS", "local", ("local", "gcp")),
    "model_store": ("RECSYS_MODEL_STORE", "local", ("local", "s3")),
    "release_publisher": ("RECSYS_RELEASE", "local", ("local", "github")),
    "training_launcher": ("RECSYS_TRAINING_LAUNCHER", "subprocess", ("subprocess", "docker", "vertex")),
}


def backend_of(resource: str, env: Mapping[str, str] | None = None) -> str:
    """The backend the environment selects for `resource` (e.g. `duckdb` for `warehouse`)."""
    return _choice(os.environ if env is None else env, *SELECTORS[resource])


def _choice(env: Mapping[str, str], name: str, default: str, options: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().lower() or default
    if value not in options:
        raise ConfigurationError(f"{name}={value!r} is not one of {', '.join(options)}")
    return value


def build_warehouse(env: Mapping[str, str], settings: Settings) -> Warehouse:
    """`RECSYS_WAREHOUSE=duckdb|bigquery`.

    `duckdb` is a file at `RECSYS_DUCKDB_PATH`. `bigquery` reads the table `RECSYS_BQ_PROJECT`.
    `RECSYS_BQ_DATASET`.`RECSYS_BQ_TABLE` (default events) in `RECSYS_BQ_LOCATION` with Application
    Default Credentials; `RECSYS_BQ_USE_STORAGE_API=false` downloads query results over REST instead of
    the Storage Read API. For an emulator, `RECSYS_BQ_ENDPOINT` (http://host:port, then no credentials
    are sent) and `RECSYS_BQ_STORAGE_ENDPOINT` (host:port of its plaintext Storage gRPC API).
    """
    kind = backend_of("warehouse", env)
    if kind == "bigquery":
        import dagster as dg

        from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse

        def setting(name: str, default: str | None = None) -> Any:
            # A value that comes from the process environment stays an EnvVar, so the definitions
            # snapshot records the variable's name rather than the value; a value passed in `env`
            # only (tests, scripts) is used as it is.
            value = env.get(name, "").strip() or default
            if value and value != default and os.environ.get(name) == value:
                return dg.EnvVar(name)
            return value

        _required(env, "RECSYS_BQ_PROJECT", "RECSYS_WAREHOUSE=bigquery")
        _required(env, "RECSYS_BQ_DATASET", "RECSYS_WAREHOUSE=bigquery")
        use_storage = env.get("RECSYS_BQ_USE_STORAGE_API", "true").strip().lower() or "true"
        if use_storage not in ("true", "1", "yes", "false", "0", "no"):
            raise ValueError(f"RECSYS_BQ_USE_STORAGE_API={use_storage!r} is not true or false")
        endpoint = env.get("RECSYS_BQ_ENDPOINT", "").strip()
        return BigQueryWarehouse(
            project=setting("RECSYS_BQ_PROJECT"),
            dataset=setting("RECSYS_BQ_DATASET"),
            table=setting("RECSYS_BQ_TABLE", "events"),
            location=setting("RECSYS_BQ_LOCATION"),
            endpoint=setting("RECSYS_BQ_ENDPOINT"),
            storage_endpoint=setting("RECSYS_BQ_STORAGE_ENDPOINT"),
            # Credentials never travel over plaintext HTTP; such an endpoint is a local emulator.
            anonymous_credentials=endpoint.startswith("http://"),
            use_storage_api=use_storage in ("true", "1", "yes"),
        )
    lock_timeout = env.get("RECSYS_DUCKDB_LOCK_TIMEOUT_SECONDS", "30").strip()
    try:
        seconds = float(lock_timeout)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise ConfigurationError(
            f"RECSYS_DUCKDB_LOCK_TIMEOUT_SECONDS={lock_timeout!r} must be a number of seconds >= 0"
        )
    return DuckDBWarehouse(
        path=env.get("RECSYS_DUCKDB_PATH", str(settings.data_dir / "warehouse.duckdb")), lock_timeout_seconds=seconds
    )


def build_item_catalogue(env: Mapping[str, str], settings: Settings) -> ItemCatalogue:
    """The postings table next to the events: same backend, file or dataset as the warehouse.

    Its table is `RECSYS_ITEMS_TABLE` (default items) in the warehouse's DuckDB file or BigQuery dataset.
    """
    table = env.get("RECSYS_ITEMS_TABLE", "").strip() or "items"
    safe_name(table, "RECSYS_ITEMS_TABLE")
    warehouse = build_warehouse({**env, "RECSYS_BQ_TABLE": table}, settings)
    if backend_of("warehouse", env) == "bigquery":
        from recsys_assets.resources.bigquery_catalogue import BigQueryItemCatalogue
        from recsys_assets.resources.bigquery_warehouse import BigQueryWarehouse

        assert isinstance(warehouse, BigQueryWarehouse)
        return BigQueryItemCatalogue(warehouse=warehouse)
    assert isinstance(warehouse, DuckDBWarehouse)
    return DuckDBItemCatalogue(path=warehouse.path, table=table, lock_timeout_seconds=warehouse.lock_timeout_seconds)


def _required(env: Mapping[str, str], name: str, selector: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{selector} needs {name}")
    return value


def _secret_ref(env: Mapping[str, str], name: str, default: str | None) -> tuple[str | None, str]:
    """A secret reference `name` or `name@version` from `env[name]`; an empty value means no secret."""
    raw = env.get(name)
    raw = default if raw is None else raw.strip()
    if not raw:
        return None, "latest"
    secret, _, version = raw.partition("@")
    return secret, version or "latest"


def build_secrets(env: Mapping[str, str], settings: Settings) -> SecretStore:
    """`RECSYS_SECRETS=local|gcp`.

    `local` reads `RECSYS_SECRET_<NAME>` variables or files in `RECSYS_SECRETS_DIR`; `gcp` reads
    Secret Manager in `RECSYS_GCP_PROJECT` with the run's Google credentials
    (`RECSYS_SECRETS_ENDPOINT` points it at a plaintext local stand-in, for tests).
    """
    kind = backend_of("secrets", env)
    if kind == "gcp":
        # Imported here so the embedded default does not load gRPC and the Google client.
        from recsys_assets.resources.gcp_secrets import GcpSecretManagerStore

        return GcpSecretManagerStore(
            project=_required(env, "RECSYS_GCP_PROJECT", "RECSYS_SECRETS=gcp"),
            endpoint=env.get("RECSYS_SECRETS_ENDPOINT", "").strip() or None,
        )
    return LocalSecretStore(directory=env.get("RECSYS_SECRETS_DIR"))


def build_model_store(env: Mapping[str, str], settings: Settings, secrets: SecretStore) -> ModelStore:
    """`RECSYS_MODEL_STORE=local|s3`.

    `s3` uses `RECSYS_S3_BUCKET`, `RECSYS_S3_PREFIX`, `RECSYS_S3_REGION` and `RECSYS_S3_ENDPOINT_URL`
    (S3-compatible stores). The key pair is read from the secrets resource: secret names (optionally
    `name@version`) in `RECSYS_S3_ACCESS_KEY_SECRET` / `RECSYS_S3_SECRET_KEY_SECRET`, default
    `aws-access-key-id` / `aws-secret-access-key`; set both to "" for the default AWS credential chain.
    """
    kind = backend_of("model_store", env)
    if kind == "s3":
        from recsys_assets.resources.s3_model_store import S3ModelStore

        access_key, access_key_version = _secret_ref(env, "RECSYS_S3_ACCESS_KEY_SECRET", "aws-access-key-id")
        secret_key, secret_key_version = _secret_ref(env, "RECSYS_S3_SECRET_KEY_SECRET", "aws-secret-access-key")
        return S3ModelStore(
            secrets=secrets,
            bucket=_required(env, "RECSYS_S3_BUCKET", "RECSYS_MODEL_STORE=s3"),
            prefix=env.get("RECSYS_S3_PREFIX", "").strip().strip("/"),
            region_name=env.get("RECSYS_S3_REGION", "").strip() or None,
            endpoint_url=env.get("RECSYS_S3_ENDPOINT_URL", "").strip() or None,
            access_key_secret=access_key,
            access_key_secret_version=access_key_version,
            secret_key_secret=secret_key,
            secret_key_secret_version=secret_key_version,
        )
    return LocalModelStore(root=env.get("RECSYS_MODEL_STORE_DIR", str(settings.data_dir / "model_store")))


def build_release_publisher(env: Mapping[str, str], settings: Settings, secrets: SecretStore) -> ReleasePublisher:
    """`RECSYS_RELEASE=local|github`.

    `github` opens the pull request on `RECSYS_GITHUB_REPOSITORY` (owner/name) against
    `RECSYS_GITHUB_BASE_BRANCH` (default main) through `RECSYS_GITHUB_BASE_URL` (default
    https://api.github.com; GitHub Enterprise: https://<host>/api/v3), with the token read from the
    secrets resource under `RECSYS_GITHUB_TOKEN_SECRET` (`name` or `name@version`, default github-token).
    """
    kind = backend_of("release_publisher", env)
    if kind == "github":
        from recsys_assets.resources.github import GitHubReleasePublisher

        repository = _required(env, "RECSYS_GITHUB_REPOSITORY", "RECSYS_RELEASE=github")
        if repository.count("/") != 1 or not all(repository.split("/")):
            raise ValueError(f"RECSYS_GITHUB_REPOSITORY={repository!r} must be owner/name")
        token, token_version = _secret_ref(env, "RECSYS_GITHUB_TOKEN_SECRET", "github-token")
        if token is None:
            raise ValueError("RECSYS_RELEASE=github needs RECSYS_GITHUB_TOKEN_SECRET (the token's secret name)")
        return GitHubReleasePublisher(
            secrets=secrets,
            repository=repository,
            base_branch=env.get("RECSYS_GITHUB_BASE_BRANCH", "").strip() or "main",
            base_url=env.get("RECSYS_GITHUB_BASE_URL", "").strip() or "https://api.github.com",
            token_secret=token,
            token_secret_version=token_version,
        )
    return LocalReleasePublisher(root=env.get("RECSYS_RELEASE_DIR", str(settings.data_dir / "model_store")))


def build_training_launcher(env: Mapping[str, str], settings: Settings) -> TrainingLauncher:
    """Where `python -m recsys_assets.train` runs: `RECSYS_TRAINING_LAUNCHER=subprocess|docker|vertex`.

    `docker` and `vertex` run the image named by `RECSYS_IMAGE` (CI sets it to
    `<region>-docker.pkg.dev/<project>/<repo>/recsys:<git sha>`), which must be pinned to a commit
    hash or digest. `docker` mounts a local artefact root at the same path (and runs as the host
    user so the files stay yours); `RECSYS_DOCKER_NETWORK` attaches a network. `vertex` reads every
    `VertexTrainingLauncher` field `f` from `RECSYS_VERTEX_<F>` (e.g. `RECSYS_VERTEX_PROJECT`,
    `RECSYS_VERTEX_MESSAGES_BUCKET`, `RECSYS_VERTEX_ACCELERATOR_TYPE`; the dict fields `labels` and
    `worker_env` as JSON objects).
    """
    kind = backend_of("training_launcher", env)
    if kind == "subprocess":
        return SubprocessTrainingLauncher()
    image = env.get("RECSYS_IMAGE", "").strip()
    if not image:
        raise ValueError(f"RECSYS_TRAINING_LAUNCHER={kind} needs RECSYS_IMAGE, the pinned project image to train on")
    if kind == "docker":
        artifacts = env.get("RECSYS_ARTIFACTS_URI", str(settings.data_dir / "artifacts"))
        local_root = None if "://" in artifacts else str(Path(artifacts).resolve())
        return DockerTrainingLauncher(
            image_uri=image,
            network=env.get("RECSYS_DOCKER_NETWORK") or None,
            artifact_root=local_root,
            user=f"{os.getuid()}:{os.getgid()}" if local_root else None,
        )
    prefix = "RECSYS_VERTEX_"
    fields = {name: info for name, info in VertexTrainingLauncher.model_fields.items() if name != "image_uri"}
    unknown = sorted(k for k in env if k.startswith(prefix) and k[len(prefix) :].lower() not in fields)
    if unknown:
        raise ValueError(
            f"unknown Vertex settings {', '.join(unknown)}; known: {', '.join(prefix + f.upper() for f in fields)}"
        )
    values: dict[str, Any] = {}
    for name, info in fields.items():
        raw = env.get(prefix + name.upper())
        if raw is None or raw.strip() == "":
            if info.is_required():
                raise ValueError(f"RECSYS_TRAINING_LAUNCHER=vertex needs {prefix + name.upper()}")
            continue
        values[name] = json.loads(raw) if name in ("labels", "worker_env") else raw.strip()
    return VertexTrainingLauncher(image_uri=image, **values)


def build_alerts(env: Mapping[str, str], secrets: SecretStore) -> AlertNotifier:
    """Run-failure alerts: `RECSYS_ALERT_SLACK_CHANNEL` with the bot token's secret in
    `RECSYS_ALERT_SLACK_TOKEN_SECRET` (default slack-bot-token; `RECSYS_SLACK_API_URL` for a stand-in), and/or
    `RECSYS_ALERT_WEBHOOK_SECRET`, the secret holding a JSON webhook's URL; `RECSYS_UI_URL` for run links.
    """
    return AlertNotifier(
        secrets=secrets,
        slack_channel=env.get("RECSYS_ALERT_SLACK_CHANNEL", "").strip() or None,
        slack_token_secret=env.get("RECSYS_ALERT_SLACK_TOKEN_SECRET", "").strip() or "slack-bot-token",
        slack_api_url=env.get("RECSYS_SLACK_API_URL", "").strip() or None,
        webhook_url_secret=env.get("RECSYS_ALERT_WEBHOOK_SECRET", "").strip() or None,
        ui_url=env.get("RECSYS_UI_URL", "").strip() or "http://127.0.0.1:3000",
    )


def build_resources(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every resource the asset graph needs, each backend chosen by its selector variable."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    secrets = build_secrets(env, settings)
    return {
        "warehouse": build_warehouse(env, settings),
        "item_catalogue": build_item_catalogue(env, settings),
        "artifacts": ArtifactStore(root_uri=env.get("RECSYS_ARTIFACTS_URI", str(settings.data_dir / "artifacts"))),
        "secrets": secrets,
        "model_store": build_model_store(env, settings, secrets),
        "release_publisher": build_release_publisher(env, settings, secrets),
        "training_launcher": build_training_launcher(env, settings),
        "alerts": build_alerts(env, secrets),
    }


def build_serving_resources(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the online service reads (`python -m recsys_assets serve`): the model store and the item catalogue.

    Only these are built, so a serving deployment needs no training, release or alert settings, and
    its model store credentials (`RECSYS_S3_*_SECRET`) can name a read-only key pair.
    """
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    return {
        "model_store": build_model_store(env, settings, build_secrets(env, settings)),
        "item_catalogue": build_item_catalogue(env, settings),
    }
