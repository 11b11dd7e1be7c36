"""The files under `deploy/` say the same thing everywhere, and hold no credentials.

Rendering with the real tools and replaying every workload is `test_deployment.py`; this module checks what a
reader of the files would: the compose instance (deploy/dagster.yaml, baked into the platform image) against
Dagster's own schema, and the chart's rendered instance against it.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from recsys_assets_tests.deploy import replay

DEPLOY = replay.DEPLOY


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def env_names(value: Any) -> set[str]:
    """Every variable an instance config reads (`{env: NAME}` anywhere in it)."""
    if isinstance(value, dict):
        if set(value) == {"env"}:
            return {value["env"]}
        return set().union(*(env_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(env_names(v) for v in value)) if value else set()
    return set()


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


def test_run_containers_get_the_instance_variables_and_the_compose_network_and_volume():
    instance = load(DEPLOY / "dagster.yaml")
    launcher = instance["run_launcher"]["config"]
    # The instance's own variables, and only those: the project's settings travel in the code server's
    # container context (test_deployment.py checks that runs receive every one).
    assert set(launcher["env_vars"]) == env_names({k: v for k, v in instance.items() if k != "run_launcher"})
    compose = load(DEPLOY / "docker-compose.yml")
    assert compose["networks"]["recsys"]["name"] == launcher["network"]
    (volume,) = launcher["container_kwargs"]["volumes"]
    assert volume == f"{compose['volumes']['recsys-data']['name']}:/var/lib/recsys"


def test_workspace_loads_the_code_location_over_grpc():
    workspace = load(DEPLOY / "workspace.yaml")
    assert [list(entry) for entry in workspace["load_from"]] == [["grpc_server"]]


@pytest.mark.slow
def test_the_chart_renders_the_same_instance_settings_as_the_compose_instance(manifests):
    rendered = yaml.safe_load(replay.by_kind(manifests, "ConfigMap")["dagster-instance"]["data"]["dagster.yaml"])
    instance = load(DEPLOY / "dagster.yaml")
    coordinator = rendered["run_coordinator"]["config"]
    assert {k: coordinator[k] for k in instance["run_coordinator"]["config"]} == instance["run_coordinator"]["config"]
    for section in ("run_monitoring", "run_retries", "sensors", "schedules"):
        assert {k: rendered[section][k] for k in instance[section]} == instance[section], section
    assert rendered["retention"]["schedule"] == instance["retention"]["schedule"]
    sensor_days = rendered["retention"]["sensor"]["purge_after_days"]
    assert {k: sensor_days[k] for k in instance["retention"]["sensor"]["purge_after_days"]} == (
        instance["retention"]["sensor"]["purge_after_days"]
    )
    logs, expected = rendered["compute_logs"], instance["compute_logs"]
    assert logs["class"] == expected["class"]
    assert {k: v for k, v in logs["config"].items() if k != "bucket"} == {
        k: v for k, v in expected["config"].items() if k != "bucket"
    }
    assert (
        rendered["run_storage"]["config"]["postgres_db"]["scheme"]
        == instance["storage"]["postgres"]["postgres_db"]["scheme"]
    )
    assert rendered["telemetry"] == instance["telemetry"]


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_deploy_files_hold_no_literal_credentials(path: Path):
    text = path.read_text()
    assert not re.search(r"(?i)(password|token|secret)\s*:\s*['\"]?[A-Za-z0-9+/]{12,}", text), path


FILE_REFERENCE = re.compile(
    r"\b((?:deploy|recsys_assets|recsys_assets_tests|scripts|benchmarks|requirements)/[\w./-]*\w)"
)


# Created on the VM from its example (README, Deploy), never committed.
CREATED_BY_THE_OPERATOR = {"deploy/recsys.env"}


def missing_references(text: str) -> list[str]:
    """Repository paths a file's comments and values name that do not exist."""
    return [
        ref
        for ref in FILE_REFERENCE.findall(text)
        if ref not in CREATED_BY_THE_OPERATOR and not (replay.REPO / ref).exists()
    ]


@pytest.mark.parametrize(
    "path",
    [*sorted(DEPLOY.rglob("*.y*ml")), DEPLOY / "helm" / "deploy.sh", DEPLOY / "recsys.env.example", replay.DOCKERFILE],
    ids=lambda p: str(p.relative_to(replay.REPO)),
)
def test_deploy_files_point_at_files_that_exist(path: Path):
    assert missing_references(path.read_text()) == []
    # The check bites: the two files the Helm values once pointed at, which never existed.
    assert missing_references("(deploy/helm/iap.yaml) ... (deploy/helm/secrets.yaml)") == [
        "deploy/helm/iap.yaml",
        "deploy/helm/secrets.yaml",
    ]
