"""The deployments as the cluster and the VM would run them: rendered by the real tools, every workload replayed.

How the rendering and the replay work, and what stands in for what: `replay.py`. Each check has a broken copy
that must fail, so none of them can pass by not looking.

Snapshots: `snapshots/helm.yaml` and `snapshots/compose.json` are the rendered configurations; a change to them
is reviewed as a diff. After an intended change: `RECSYS_UPDATE_SNAPSHOTS=1 pytest recsys_assets_tests/deploy`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from recsys_assets.settings import DAGSTER_RANGE_RUN_ENVIRONMENT
from recsys_assets_tests.deploy import replay
from recsys_assets_tests.deploy.replay import DEPLOY, PLATFORM_IMAGE, REPO, TRAINING_IMAGE, Workload

SNAPSHOTS = Path(__file__).parent / "snapshots"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# benchmarks/README.md: the retrain's peak RSS at 10 M events.
BENCHMARK_PEAK_GIB = 2.8
MIGRATE_JOB = "dagster-dagster-webserver-instance-migrate"
CODE_SERVER = "Deployment/dagster-dagster-user-deployments-recsys-assets"


@pytest.fixture(scope="module")
def platform() -> replay.ImageStage:
    return replay.image_stage("platform")


@pytest.fixture
def deploy_copy(tmp_path) -> Path:
    """deploy/ copied, as the README's compose steps use it (recsys.env from the example)."""
    copied = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copied, ignore=shutil.ignore_patterns("recsys.env"))
    return copied


def values_copy(tmp_path: Path, change) -> Path:
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    change(values)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def gib(quantity: str) -> float:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)(Mi|Gi)", quantity).groups()  # type: ignore[union-attr]
    return float(number) / (1024 if unit == "Mi" else 1)


def normalised(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines()) + "\n"


def check_snapshot(name: str, rendered: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("RECSYS_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(normalised(rendered))
    assert path.is_file(), f"no snapshot {path.name}: run with RECSYS_UPDATE_SNAPSHOTS=1 and review it"
    assert normalised(rendered) == path.read_text(), (
        f"the rendered configuration differs from snapshots/{name}: review the change, then re-run with "
        "RECSYS_UPDATE_SNAPSHOTS=1 and commit the new snapshot"
    )


# --- Helm: rendering -----------------------------------------------------------------------------------------


def test_helm_renders_only_valid_kubernetes_objects(manifests):
    assert replay.kubernetes_errors(manifests) == []
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "ConfigMap", "Job", "Ingress"} <= kinds
    (ingress,) = [m for m in manifests if m["kind"] == "Ingress"]
    assert ingress["apiVersion"] == "networking.k8s.io/v1"

    # The validator bites: a port given by name where a number is required, and a misspelt field (strict).
    broken = copy.deepcopy(manifests)
    deployments = replay.by_kind(broken, "Deployment")
    replay.pod_template(deployments["dagster-dagster-webserver"])["containers"][0]["ports"][0]["containerPort"] = "http"
    replay.pod_template(deployments["dagster-daemon"])["containers"][0]["imagePullPolicyy"] = "Always"
    assert len(replay.kubernetes_errors(broken)) == 2


@pytest.mark.slow  # a second render (about 1.5 s)
def test_the_chart_checks_values_against_local_kubernetes_definitions(chart, tmp_path):
    """The values schema's Kubernetes references resolve offline: a malformed resources block is refused."""
    broken = values_copy(tmp_path, lambda v: v["dagsterWebserver"].update(resources={"requests": "lots"}))
    with pytest.raises(replay.RenderError, match="resources"):
        replay.render_helm(chart, broken)


def test_every_helm_container_is_pinned_by_digest(manifests):
    images = [
        c["image"]
        for m in manifests
        if m["kind"] in ("Deployment", "Job")
        for c in [*replay.pod_template(m).get("initContainers", []), *replay.pod_template(m)["containers"]]
    ]
    assert images and all(DIGEST.search(image) for image in images), images
    assert PLATFORM_IMAGE in images


def test_helm_pods_run_as_non_root_on_a_read_only_root_with_no_capabilities(manifests):
    pods = {m["metadata"]["name"]: replay.pod_template(m) for m in manifests if m["kind"] in ("Deployment", "Job")}
    assert pods
    for name, pod in pods.items():
        security = pod.get("securityContext") or {}
        assert security.get("runAsNonRoot") is True and security.get("runAsUser", 0) > 0, name
        scratch = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            context = container.get("securityContext") or {}
            assert context.get("readOnlyRootFilesystem") is True, f"{name}/{container['name']}"
            assert context.get("allowPrivilegeEscalation") is False, f"{name}/{container['name']}"
            assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{container['name']}"
        for container in pod["containers"]:
            # With a read-only root, /tmp (compute-log staging, temporary files) must be a writable volume.
            tmp_mounts = [m for m in container.get("volumeMounts") or [] if m["mountPath"] == "/tmp"]
            assert [m["name"] for m in tmp_mounts if m["name"] in scratch], f"{name}/{container['name']}: no /tmp"


def webserver_ports(manifests) -> tuple[int, int, int]:
    """(the port the webserver's command listens on, its containerPort, the Service's target)."""
    deployment = replay.by_kind(manifests, "Deployment")["dagster-dagster-webserver"]
    container = replay.pod_template(deployment)["containers"][0]
    listen = int(re.search(r"-p (\d+)", " ".join(container["command"])).group(1))  # type: ignore[union-attr]
    service = replay.by_kind(manifests, "Service")["dagster-dagster-webserver"]["spec"]["ports"][0]
    return listen, container["ports"][0]["containerPort"], service.get("targetPort", service["port"])


def test_the_webserver_listens_where_a_non_root_user_may(manifests):
    listen, container_port, target = webserver_ports(manifests)
    assert listen == container_port == target
    assert listen > 1023, "uid 10001 cannot bind a port below 1024"


@pytest.mark.slow  # a second render (about 1.5 s)
def test_the_chart_listens_on_the_service_port(chart, tmp_path):
    """Why the service port is not 80: the chart makes it the webserver's listen port too."""
    broken = values_copy(tmp_path, lambda v: v["dagsterWebserver"]["service"].update(port=80))
    assert webserver_ports(replay.render_helm(chart, broken))[0] < 1024


def test_the_code_location_has_one_name_everywhere(manifests):
    from scripts.launch_retrain import LOCATION

    def locations(workspace: dict[str, Any]) -> set[str]:
        return {next(iter(entry.values()))["location_name"] for entry in workspace["load_from"]}

    helm_workspace = yaml.safe_load(
        replay.by_kind(manifests, "ConfigMap")["dagster-workspace-yaml"]["data"]["workspace.yaml"]
    )
    compose_workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    local_workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    assert locations(helm_workspace) == locations(compose_workspace) == locations(local_workspace) == {LOCATION}
    # The workspace reaches the code server through its rendered Service and port.
    (server,) = [entry["grpc_server"] for entry in helm_workspace["load_from"]]
    service = replay.by_kind(manifests, "Service")[server["host"]]
    assert service["spec"]["ports"][0]["port"] == server["port"]


def test_the_settings_name_the_training_image_and_fixed_partitions(manifests):
    settings = replay.by_kind(manifests, "ConfigMap")["recsys-settings"]["data"]
    assert settings["RECSYS_IMAGE"] == TRAINING_IMAGE
    assert settings["RECSYS_ENVIRONMENT"] == "production"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", settings["RECSYS_PARTITIONS_START"])
    assert not [key for key in settings if key.startswith("RECSYS_SECRET_")], "secret values belong in Secret Manager"


def test_helm_render_snapshot(manifests):
    check_snapshot("helm.yaml", yaml.safe_dump_all(manifests, sort_keys=True))


# --- Helm: the deploy script ---------------------------------------------------------------------------------


def run_deploy_script(tmp_path: Path, *images: str) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    """deploy.sh in upgrade mode with `helm` and `kubectl` stand-ins that record their arguments."""
    log = tmp_path / "calls.jsonl"
    for name in ("helm", "kubectl"):
        stand_in = tmp_path / name
        stand_in.write_text(
            f'#!/bin/sh\nexec {replay.sys.executable} -c \'import json, sys; open("{log}", "a").write(json.dumps(sys.argv) + "\\n")\' {name} "$@"\n'
        )
        stand_in.chmod(0o755)
    result = subprocess.run(
        ["bash", str(DEPLOY / "helm" / "deploy.sh"), *images],
        env={**os.environ, "HELM": str(tmp_path / "helm"), "KUBECTL": str(tmp_path / "kubectl")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = [json.loads(line)[1:] for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


def test_an_upgrade_migrates_rolls_back_on_failure_and_checks_the_code_server(manifests, tmp_path):
    result, calls = run_deploy_script(tmp_path, PLATFORM_IMAGE, TRAINING_IMAGE)
    assert result.returncode == 0, result.stderr
    assert [call[:2] for call in calls] == [
        ["helm", "repo"],
        ["kubectl", "--namespace"],
        ["helm", "upgrade"],
        ["kubectl", "--namespace"],
    ]
    delete, upgrade, smoke = calls[1], calls[2], calls[3]
    # The previous migration Job goes first; the rendered one has that name.
    assert delete[3:7] == ["delete", "job", MIGRATE_JOB, "--ignore-not-found"] and MIGRATE_JOB in replay.by_kind(
        manifests, "Job"
    )
    (migrate,) = replay.by_kind(manifests, "Job").values()
    assert replay.pod_template(migrate)["containers"][0]["args"] == ["instance", "migrate"]
    assert {"--install", "--rollback-on-failure", "--wait", "--wait-for-jobs"} <= set(upgrade)
    # The same chart version, values and images as the render the other tests check.
    assert upgrade[upgrade.index("--version") + 1] == "1.13.27"
    assert f"recsys.trainingImage={TRAINING_IMAGE}" in upgrade
    assert f"recsys.platformImage={PLATFORM_IMAGE}" in upgrade  # the online service's image
    assert upgrade[upgrade.index("--values") + 1] == str(DEPLOY / "helm" / "values.yaml")
    assert smoke[3:] == [
        "exec",
        f"deploy/{CODE_SERVER.split('/')[1]}",
        "--",
        *["dagster", "definitions", "validate", "-m", "recsys_assets.definitions"],
    ]
    assert CODE_SERVER.split("/")[1] in replay.by_kind(manifests, "Deployment")


@pytest.mark.parametrize("image", ["europe-west1-docker.pkg.dev/p/r/recsys:latest", "recsys@sha256:abc"])
def test_the_deploy_script_refuses_an_image_not_pinned_by_digest(tmp_path, image):
    result, calls = run_deploy_script(tmp_path, image, TRAINING_IMAGE)
    assert result.returncode == 2 and "not an image pinned by digest" in result.stderr
    assert calls == []


# --- compose: rendering --------------------------------------------------------------------------------------


def test_compose_renders_with_the_real_compose_and_pins_every_image(deploy_copy):
    config = replay.render_compose(deploy_copy)
    assert set(config["services"]) >= {"postgres", "migrate", "code-server", "webserver", "daemon"}
    assert all(DIGEST.search(service["image"]) for service in config["services"].values())
    # The webserver has no login: published on loopback only.
    (port,) = config["services"]["webserver"]["ports"]
    assert port["host_ip"] == "127.0.0.1"

    # Without the training image, compose refuses to start anything, naming the variable.
    environment = {k: v for k, v in replay.compose_environment().items() if k != "RECSYS_IMAGE"}
    with pytest.raises(replay.RenderError, match="RECSYS_IMAGE"):
        replay.render_compose(deploy_copy, environment)


def test_compose_migrates_before_anything_else_starts(deploy_copy):
    services = replay.render_compose(deploy_copy)["services"]
    assert services["migrate"]["command"] == ["dagster", "instance", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in ("code-server", "webserver", "daemon"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name


def volume_owner_errors(config: dict[str, Any], image: replay.ImageStage) -> list[str]:
    """A named volume starts as a copy of the image's folder at its mount point, owner included: every one mounted
    into the project image must be a folder the Dockerfile creates for its (non-root) user."""
    errors = []
    for name, service in config["services"].items():
        if service["image"] != PLATFORM_IMAGE:
            continue
        for volume in service.get("volumes") or []:
            if volume["type"] == "volume" and volume["target"] not in image.owned_dirs:
                errors.append(f"{name}: volume {volume['source']} at {volume['target']} would be owned by root")
    return errors


def test_compose_volumes_are_writable_by_the_image_user(deploy_copy, platform):
    config = replay.render_compose(deploy_copy)
    assert platform.user == "10001"
    assert volume_owner_errors(config, platform) == []
    for name, service in config["services"].items():
        if service["image"] == PLATFORM_IMAGE:
            assert service["read_only"] is True and service["cap_drop"] == ["ALL"] and "/tmp" in service["tmpfs"], name

    # The broken copy: the compute-log folder as the Dockerfile had it before (not created for the user).
    dockerfile = replay.DOCKERFILE.read_text().replace(" /tmp/dagster-compute-logs", "")
    before = replay.image_stage("platform", dockerfile)
    assert [e for e in volume_owner_errors(config, before) if "compute-logs" in e]


def test_compose_render_snapshot(deploy_copy):
    config = replay.render_compose(deploy_copy)
    check_snapshot("compose.json", json.dumps(config, indent=2, sort_keys=True))


# --- every workload, replayed (slow: one `dagster definitions validate` per distinct environment) --------------


def backends(workload: Workload) -> dict[str, str]:
    from recsys_assets.resources import BACKENDS
    from recsys_assets.settings import Settings

    settings = Settings.from_env(workload.env)
    return {resource: getattr(settings, resource) for resource in BACKENDS}


def assert_production_settings(workloads: list[Workload], code_server: Workload) -> None:
    """Production mode, fixed partitions, the training image, and the code server's backends in every workload:
    a run missing a setting would otherwise fall back to an embedded default without a word."""
    for workload in workloads:
        assert workload.env.get("RECSYS_ENVIRONMENT") == "production", workload.name
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", workload.env.get("RECSYS_PARTITIONS_START", "")), workload.name
        assert workload.env.get("RECSYS_IMAGE") == TRAINING_IMAGE, workload.name
        # What importing the package used to set: every process that creates or runs a run needs both.
        for name, value in DAGSTER_RANGE_RUN_ENVIRONMENT.items():
            assert workload.env.get(name) == value, (workload.name, name)
        assert backends(workload) == backends(code_server), workload.name


def assert_definitions_load(workloads: list[Workload], tmp_path: Path) -> None:
    results = replay.validate_definitions(workloads, tmp_path)
    failed = {name: replay.last_error_line(r) for name, r in results.items() if r.returncode != 0}
    assert not failed, failed


def helm_replay(manifests, platform, tmp_path) -> tuple[list[Workload], Workload, dict[str, Any]]:
    """The Dagster workloads (the online service has checks of its own, below) and a run pod of the code server."""
    workloads = [w for w in replay.helm_workloads(manifests, platform.env) if not replay.is_serve(w)]
    names = {w.name for w in workloads}
    assert {
        CODE_SERVER,
        "Deployment/dagster-daemon",
        "Deployment/dagster-dagster-webserver",
        f"Job/{MIGRATE_JOB}",
    } <= names
    code_server = next(w for w in workloads if w.name == CODE_SERVER)
    daemon = next(w for w in workloads if w.name == "Deployment/dagster-daemon")
    job = replay.k8s_run_pod(manifests, daemon, code_server, tmp_path)
    run_pod = replay.run_pod_workload(job, manifests, platform.env)
    # A run worker gets its instance from the daemon (serialized in its arguments), resolved in its own environment.
    run_pod.instance = daemon.instance
    return workloads, run_pod, job


def run_resources(job: dict[str, Any]) -> dict[str, Any]:
    return replay.pod_template(job)["containers"][0]["resources"]


@pytest.mark.slow
def test_every_helm_workload_starts_with_its_own_configuration(manifests, platform, tmp_path):
    workloads, run_pod, job = helm_replay(manifests, platform, tmp_path)
    everything = [*workloads, run_pod]
    assert replay.kubernetes_errors([job]) == []
    code_server = next(w for w in workloads if w.name == CODE_SERVER)
    assert backends(code_server)["training_launcher"] == "vertex"
    assert_production_settings(everything, code_server)

    # Instances: the code server reads none (as in the official chart; the daemon hands its instance to every
    # sensor and schedule evaluation); every other workload's resolves in its own environment.
    assert code_server.instance is None
    errors = [e for w in everything if w is not code_server for e in replay.instance_errors(w, tmp_path)]
    assert errors == []

    # Run pods are sized by the launcher, as the README says, and hardened like every other pod.
    launcher = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())["runLauncher"]["config"]["k8sRunLauncher"]
    assert run_resources(job) == launcher["runK8sConfig"]["containerConfig"]["resources"]
    assert gib(run_resources(job)["requests"]["memory"]) > BENCHMARK_PEAK_GIB
    pod = replay.pod_template(job)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["containers"][0]["image"] == PLATFORM_IMAGE

    assert_definitions_load(everything, tmp_path)


@pytest.mark.slow
def test_broken_helm_copies_fail(manifests, chart, platform, tmp_path):
    # 1. The settings without RECSYS_IMAGE (the first finding): the code server and the runs cannot load.
    broken = copy.deepcopy(manifests)
    del replay.by_kind(broken, "ConfigMap")["recsys-settings"]["data"]["RECSYS_IMAGE"]
    workloads, run_pod, _ = helm_replay(broken, platform, tmp_path)
    code_server = next(w for w in workloads if w.name == CODE_SERVER)
    results = replay.validate_definitions([code_server, run_pod], tmp_path)
    assert all(r.returncode != 0 for r in results.values())
    assert all("RECSYS_IMAGE" in r.stdout + r.stderr for r in results.values())

    # 2. The code server's config forwarded to runs (the second finding): its 250m / 1Gi / 2Gi win.
    forwarded = values_copy(
        tmp_path,
        lambda v: v["dagster-user-deployments"]["deployments"][0].update(includeConfigInLaunchedRuns={"enabled": True}),
    )
    _, _, job = helm_replay(replay.render_helm(chart, forwarded), platform, tmp_path)
    assert run_resources(job)["requests"]["memory"] == "1Gi"

    # 3. The daemon without the PostgreSQL secret: its instance does not resolve.
    daemon = next(w for w in workloads if w.name == "Deployment/dagster-daemon")
    daemon.env.pop("DAGSTER_PG_PASSWORD")
    assert [e for e in replay.instance_errors(daemon, tmp_path) if "DAGSTER_PG_PASSWORD" in e]


def compose_replay(deploy_dir: Path, platform, tmp_path) -> tuple[list[Workload], Workload, dict[str, Any]]:
    """The Dagster services (the online service has checks of its own, below) and a run container."""
    config = replay.render_compose(deploy_dir)
    workloads = [w for w in replay.compose_workloads(config, platform) if not replay.is_serve(w)]
    names = {w.name.removeprefix("compose service ") for w in workloads}
    assert {"migrate", "code-server", "webserver", "daemon"} <= names
    code_server = next(w for w in workloads if w.name.endswith("code-server"))
    daemon = next(w for w in workloads if w.name.endswith("daemon"))
    container = replay.docker_run_container(daemon, code_server, tmp_path)
    run = replay.run_container_workload(container, platform)
    run.instance = daemon.instance
    return workloads, run, container


@pytest.mark.slow
def test_every_compose_workload_starts_with_its_own_configuration(deploy_copy, platform, tmp_path):
    workloads, run, container = compose_replay(deploy_copy, platform, tmp_path)
    everything = [*workloads, run]
    code_server = next(w for w in workloads if w.name.endswith("code-server"))
    assert backends(code_server)["training_launcher"] == "vertex"
    assert_production_settings(everything, code_server)
    assert [e for w in everything for e in replay.instance_errors(w, tmp_path)] == []
    # Runs receive every RECSYS_* setting the code server has, with the same values: no list to keep.
    settings = {k: v for k, v in code_server.env.items() if k.startswith("RECSYS_")}
    assert {k: run.env.get(k) for k in settings} == settings
    # Hardened like the services, and removed when finished.
    assert container["image"] == PLATFORM_IMAGE
    assert container["auto_remove"] is True and container["read_only"] is True and container["cap_drop"] == ["ALL"]
    assert_definitions_load(everything, tmp_path)


@pytest.mark.slow
def test_broken_compose_copies_fail(deploy_copy, platform, tmp_path):
    # 1. The code server without RECSYS_IMAGE: it cannot load its definitions.
    workloads, _, _ = compose_replay(deploy_copy, platform, tmp_path)
    code_server = next(w for w in workloads if w.name.endswith("code-server"))
    code_server.env.pop("RECSYS_IMAGE")
    (result,) = replay.validate_definitions([code_server], tmp_path).values()
    assert result.returncode != 0 and "RECSYS_IMAGE" in result.stdout + result.stderr

    # 2. The code server without its container context: runs get only the instance's own variables, so every
    # backend silently falls back to its embedded default (they still load): the settings check refuses it.
    compose = deploy_copy / "docker-compose.yml"
    text = compose.read_text()
    assert " --container-context" in text
    compose.write_text(re.sub(r' --container-context\n\s+"\$\$\(python[^\n]*\n', "\n", text))
    workloads, run, _ = compose_replay(deploy_copy, platform, tmp_path)
    code_server = next(w for w in workloads if w.name.endswith("code-server"))
    assert "RECSYS_WAREHOUSE" not in run.env and backends(run)["warehouse"] == "duckdb"
    with pytest.raises(AssertionError):
        assert_production_settings([run], code_server)


# --- the online service (fast: its start is replayed in this process, nothing listens) ------------------------

SERVE_DEPLOYMENT = "recsys-serve"
# benchmarks/README.md: the service's peak RSS while a reload holds two 10 M-event models.
SERVE_RELOAD_PEAK_GIB = 0.71


def serve_and_code_server(workloads: list[Workload]) -> tuple[Workload, Workload]:
    (serve,) = [w for w in workloads if replay.is_serve(w)]
    code_server = next(w for w in workloads if w.name in (CODE_SERVER, "compose service code-server"))
    return serve, code_server


def probe_answers(launch: replay.ServeLaunch) -> dict[str, int]:
    """The probed routes of the app the service would serve, before any champion is loaded."""
    import asyncio

    import httpx

    async def ask() -> dict[str, int]:
        # httpx's ASGI transport runs no lifespan: the app does not start following the champion in the store.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=launch.app), base_url="http://serve") as client:
            return {path: (await client.get(path)).status_code for path in ("/healthz", "/readyz")}

    return asyncio.run(ask())


def test_the_helm_service_serves_what_the_code_server_releases_with_a_read_only_key(manifests, platform):
    serve, code_server = serve_and_code_server(replay.helm_workloads(manifests, platform.env))
    assert serve.name == f"Deployment/{SERVE_DEPLOYMENT}" and serve.image == PLATFORM_IMAGE
    assert replay.serve_errors(serve, code_server) == []
    launch = replay.serve_launch(serve)
    assert {"model_store", "s3_bucket", "s3_prefix", "model_name", "warehouse", "items_table"} <= set(
        launch.settings_read
    )
    store = launch.resources["model_store"]
    assert (store.bucket, store.access_key_secret) == ("my-model-store", "model-store-reader-access-key-id")
    # Its own identity: a Kubernetes service account bound to a Google one, not the Dagster pods' account.
    pod = replay.pod_template(replay.by_kind(manifests, "Deployment")[SERVE_DEPLOYMENT])
    account = replay.by_kind(manifests, "ServiceAccount")[pod["serviceAccountName"]]
    assert pod["serviceAccountName"] != "dagster"
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].startswith("recsys-serve@")

    def broken(change) -> list[str]:
        copied = copy.deepcopy(manifests)
        (container,) = replay.pod_template(replay.by_kind(copied, "Deployment")[SERVE_DEPLOYMENT])["containers"]
        change(container)
        return replay.serve_errors(*serve_and_code_server(replay.helm_workloads(copied, platform.env)))

    # Without the settings: a local store, another catalogue; without its key pair: the code server's (read-write).
    assert any("model_store" in e for e in broken(lambda c: c.pop("envFrom")))
    assert any("s3_secret_key_secret" in e for e in broken(lambda c: c["env"].pop()))
    leaked = broken(lambda c: c["env"].append({"name": "AWS_SECRET_ACCESS_KEY", "value": "x"}))
    assert any("AWS_SECRET_ACCESS_KEY" in e for e in leaked)


def test_the_helm_service_is_probed_sized_and_reached_on_the_port_it_listens_on(manifests, platform):
    deployment = replay.by_kind(manifests, "Deployment")[SERVE_DEPLOYMENT]
    pod = replay.pod_template(deployment)
    (container,) = pod["containers"]
    serve, _ = serve_and_code_server(replay.helm_workloads(manifests, platform.env))
    launch = replay.serve_launch(serve)
    host, port = launch.listen
    assert host == "0.0.0.0" and port > 1023, "reachable from the kubelet and the Service; uid 10001 binds above 1023"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": port}

    probes = {kind: container[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == probes["startupProbe"]["path"] == "/healthz"
    assert {ports.get(p["port"], p["port"]) for p in probes.values()} == {port}
    # The app answers them: alive at once, ready only once a verified champion is served.
    assert probe_answers(launch) == {"/healthz": 200, "/readyz": 503}

    service = replay.by_kind(manifests, "Service")[SERVE_DEPLOYMENT]
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    (service_port,) = service["spec"]["ports"]
    assert ports.get(service_port["targetPort"], service_port["targetPort"]) == port

    # A voluntary disruption (a node drain) leaves one replica serving.
    budget = replay.by_kind(manifests, "PodDisruptionBudget")[SERVE_DEPLOYMENT]["spec"]
    assert budget["selector"] == deployment["spec"]["selector"]
    assert 1 <= budget["minAvailable"] < deployment["spec"]["replicas"]

    resources = container["resources"]
    assert resources["requests"]["cpu"] and gib(resources["requests"]["memory"]) >= 1
    assert gib(resources["limits"]["memory"]) > SERVE_RELOAD_PEAK_GIB * 1.5, "a reload holds two models"


def test_the_compose_service_serves_what_the_code_server_releases_with_a_read_only_key(deploy_copy, platform):
    config = replay.render_compose(deploy_copy)
    serve, code_server = serve_and_code_server(replay.compose_workloads(config, platform))
    assert serve.name == "compose service serve" and serve.image == PLATFORM_IMAGE
    assert replay.serve_errors(serve, code_server) == []
    launch = replay.serve_launch(serve)
    host, port = launch.listen
    service = config["services"]["serve"]
    # No login: published on the VM's loopback only; healthy once it serves a verified champion.
    (published,) = service["ports"]
    assert (published["host_ip"], published["target"]) == ("127.0.0.1", port) and host == "0.0.0.0"
    assert f"http://127.0.0.1:{port}/readyz" in " ".join(service["healthcheck"]["test"])
    assert probe_answers(launch)["/readyz"] == 503
    assert "depends_on" not in service, "it needs no database nor migration"
    assert int(service["mem_limit"]) / 2**30 > SERVE_RELOAD_PEAK_GIB * 1.5

    def broken(change) -> list[str]:
        copied = copy.deepcopy(config)
        change(copied["services"]["serve"]["environment"])
        return replay.serve_errors(*serve_and_code_server(replay.compose_workloads(copied, platform)))

    assert any("RECSYS_S3_BUCKET" in e for e in broken(lambda env: env.pop("RECSYS_S3_BUCKET")))
    assert any("s3_access_key_secret" in e for e in broken(lambda env: env.pop("RECSYS_S3_ACCESS_KEY_SECRET")))
    assert any("DAGSTER_PG_PASSWORD" in e for e in broken(lambda env: env.update(DAGSTER_PG_PASSWORD="x")))


def test_the_readme_deploys_the_way_these_tests_render():
    """The README's install and upgrade steps are the commands rendered here: compose with the variables
    `compose_environment` exports and the example settings, Helm through deploy.sh with two pinned images."""
    readme = (REPO / "README.md").read_text()
    deploy = readme[readme.index("## Deploy") : readme.index("## Operating it safely")]
    exported = set(re.findall(r"^export (\w+)=", deploy, re.MULTILINE))
    assert exported == set(replay.compose_environment())
    assert "cp deploy/recsys.env.example deploy/recsys.env" in deploy
    assert deploy.count("docker compose -p recsys -f deploy/docker-compose.yml up -d") == 2  # install, upgrade
    assert re.search(r"^deploy/helm/deploy\.sh \\\n\s+\S+@sha256:<digest> \\\n\s+\S+@sha256:<digest>$", deploy, re.M)
    workflow = (REPO / ".github" / "workflows" / "ci.yml").read_text()
    assert 'bash deploy/helm/deploy.sh "$PLATFORM_IMAGE" "$TRAINING_IMAGE"' in workflow
