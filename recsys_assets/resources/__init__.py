"""Resource wiring: one function picks every backend from environment variables.

Each backend has its own selector variable whose default is the embedded option, so a machine
with no cloud runs the whole graph, and production switches backends by configuration only:

| resource            | selector                    | embedded default | cloud option |
|---------------------|-----------------------------|------------------|--------------|
| warehouse           | RECSYS_WAREHOUSE            | duckdb           | bigquery     |
| model_store         | RECSYS_MODEL_STORE          | local            | s3           |
| secrets             | RECSYS_SECRETS              | local            | gcp          |
| release_publisher   | RECSYS_RELEASE              | local            | github       |
| training_launcher   | RECSYS_TRAINING_LAUNCHER    | subprocess       | docker, vertex |
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from recsys_assets.resources.artifacts import ArtifactStore
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


def _choice(env: Mapping[str, str], name: str, default: str, options: tuple[str, ...]) -> str:
    value = env.get(name, default).strip().lower() or default
    if value not in options:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(options)}")
    return value


def build_warehouse(env: Mapping[str, str], settings: Settings) -> Warehouse:
    _choice(env, "RECSYS_WAREHOUSE", "duckdb", ("duckdb",))
    return DuckDBWarehouse(path=env.get("RECSYS_DUCKDB_PATH", str(settings.data_dir / "warehouse.duckdb")))


def build_secrets(env: Mapping[str, str], settings: Settings) -> SecretStore:
    _choice(env, "RECSYS_SECRETS", "local", ("local",))
    return LocalSecretStore(directory=env.get("RECSYS_SECRETS_DIR"))


def build_model_store(env: Mapping[str, str], settings: Settings, secrets: SecretStore) -> ModelStore:
    _choice(env, "RECSYS_MODEL_STORE", "local", ("local",))
    return LocalModelStore(root=env.get("RECSYS_MODEL_STORE_DIR", str(settings.data_dir / "model_store")))


def build_release_publisher(env: Mapping[str, str], settings: Settings, secrets: SecretStore) -> ReleasePublisher:
    _choice(env, "RECSYS_RELEASE", "local", ("local",))
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
    kind = _choice(env, "RECSYS_TRAINING_LAUNCHER", "subprocess", ("subprocess", "docker", "vertex"))
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
        raise ValueError(f"unknown Vertex settings {', '.join(unknown)}; known: {', '.join(prefix + f.upper() for f in fields)}")
    values: dict[str, Any] = {}
    for name, info in fields.items():
        raw = env.get(prefix + name.upper())
        if raw is None or raw.strip() == "":
            if info.is_required():
                raise ValueError(f"RECSYS_TRAINING_LAUNCHER=vertex needs {prefix + name.upper()}")
            continue
        values[name] = json.loads(raw) if name in ("labels", "worker_env") else raw.strip()
    return VertexTrainingLauncher(image_uri=image, **values)


def build_resources(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every resource the asset graph needs, each backend chosen by its selector variable."""
    env = os.environ if env is None else env
    settings = Settings.from_env(env)
    secrets = build_secrets(env, settings)
    return {
        "warehouse": build_warehouse(env, settings),
        "artifacts": ArtifactStore(root_uri=env.get("RECSYS_ARTIFACTS_URI", str(settings.data_dir / "artifacts"))),
        "secrets": secrets,
        "model_store": build_model_store(env, settings, secrets),
        "release_publisher": build_release_publisher(env, settings, secrets),
        "training_launcher": build_training_launcher(env, settings),
    }
