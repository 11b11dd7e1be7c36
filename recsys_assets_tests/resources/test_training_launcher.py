"""The Docker and Vertex training launchers, and the one variable that picks a launcher.

No Docker engine exists on the machines this suite runs on (the docker CLI is only a client), so the
Docker launcher is checked at the docker SDK boundary: a stub `docker.client.from_env` records the
container `PipesDockerClient` would create. That stub is used for this reason only; the test that
needs a real engine is below and skips itself when there is none.
"""

import json
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import docker
import pytest
from dagster_pipes import PIPES_PROTOCOL_VERSION, PIPES_PROTOCOL_VERSION_FIELD
from pydantic import ValidationError

from recsys_assets.domain.errors import ConfigurationError
from recsys_assets.resources import backend, build_resources
from recsys_assets.resources import training_launcher as launchers
from recsys_assets.resources.training_launcher import (
    TRAINING_COMMAND,
    TRAINING_ENV,
    DockerTrainingLauncher,
    SubprocessTrainingLauncher,
    VertexTrainingLauncher,
)
from recsys_assets.settings import Settings
from recsys_assets_tests.support.standins.s3 import S3StandIn
from recsys_assets_tests.support.standins.vertex import DUMMY_AWS, VertexStandIn

IMAGE = "europe-west1-docker.pkg.dev/proj/repo/recsys:" + "3f2c1ab9d0e4" + "5" * 28
WORKER = Path(__file__).parents[1] / "pipes" / "pipes_worker.py"
PIPES_VARS = {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}


def build_training_launcher(env: dict[str, str], tmp_path: Path) -> launchers.TrainingLauncher:
    settings = Settings.from_env({"RECSYS_DATA_DIR": str(tmp_path), **env})
    return backend("training_launcher", settings).build(settings, {})


def launch_in_asset(launcher: launchers.TrainingLauncher, extras: dict[str, Any], instance=None, partitioned=False):
    """Materialize one asset that launches training the way `trained_model` does and returns what came back."""
    partitions = dg.StaticPartitionsDefinition(["2026-03-10"]) if partitioned else None

    @dg.asset(partitions_def=partitions)
    def trained(context: dg.AssetExecutionContext, training_launcher: launchers.TrainingLauncher):
        return training_launcher.launch(context, extras).get_materialize_result()

    return dg.materialize(
        [trained],
        resources={"training_launcher": launcher},
        instance=instance,
        partition_key="2026-03-10" if partitioned else None,
    )


# -- Docker -----------------------------------------------------------------------------------


class StubContainer:
    """What `PipesDockerClient` calls on a container; its log stream carries one Pipes message, as the worker's stderr would."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")

    def logs(self, **_: Any):
        message = {
            PIPES_PROTOCOL_VERSION_FIELD: PIPES_PROTOCOL_VERSION,
            "method": "report_asset_materialization",
            "params": {
                "asset_key": "trained",
                "data_version": None,
                "metadata": {"rows": {"raw_value": 7, "type": "int"}},
            },
        }
        yield (json.dumps(message) + "\n").encode()

    def wait(self) -> dict[str, int]:
        self.calls.append("wait")
        return {"StatusCode": 0}

    def stop(self) -> None:
        self.calls.append("stop")


class StubDockerClient:
    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.container = StubContainer()
        self.containers = self

    def create(self, **kwargs: Any) -> StubContainer:
        self.created.append(kwargs)
        return self.container


@pytest.fixture
def stub_docker(monkeypatch: pytest.MonkeyPatch) -> StubDockerClient:
    stub = StubDockerClient()
    monkeypatch.setattr(docker.client, "from_env", lambda *a, **k: stub)
    return stub


def test_docker_launcher_creates_the_pinned_training_container(stub_docker, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret")  # must not reach the container
    launcher = DockerTrainingLauncher(
        image_uri=IMAGE, artifact_root=str(tmp_path), network="recsys", user="1000:1000", env={"LOG_LEVEL": "info"}
    )

    result = launch_in_asset(launcher, {"training_set_uri": str(tmp_path / "ts"), "output_uri": str(tmp_path / "m")})

    (created,) = stub_docker.created
    assert created["image"] == IMAGE and launcher.image == IMAGE
    assert created["command"] == TRAINING_COMMAND == ["python", "-m", "recsys_assets.train"]
    env = created["environment"]
    assert set(env) >= PIPES_VARS and {k: env[k] for k in TRAINING_ENV} == TRAINING_ENV and env["LOG_LEVEL"] == "info"
    assert set(env) == PIPES_VARS | set(TRAINING_ENV) | {"LOG_LEVEL"}, "only the declared variables reach the container"
    assert created["volumes"] == [f"{tmp_path}:{tmp_path}:rw"], "artefact URIs must resolve at the same path inside"
    assert created["network"] == "recsys" and created["user"] == "1000:1000" and created["detach"] is True
    assert stub_docker.container.calls == ["start", "wait", "stop"]
    metadata = result.asset_materializations_for_node("trained")[0].metadata
    assert metadata["rows"].value == 7, "messages in the container's log stream did not reach Dagster"


@pytest.mark.parametrize("image", ["recsys", "recsys:latest", "recsys:main", "recsys:v1.2.3", "localhost:5000/recsys"])
def test_docker_launcher_refuses_unpinned_images(image):
    with pytest.raises(ValidationError, match="is not pinned"):
        DockerTrainingLauncher(image_uri=image)


def test_launchers_refuse_secret_looking_environment():
    with pytest.raises(ValidationError, match="look like credentials"):
        DockerTrainingLauncher(image_uri=IMAGE, env={"GITHUB_TOKEN": "x"})
    with pytest.raises(ValidationError, match="AWS_SECRET_ACCESS_KEY"):
        VertexTrainingLauncher(
            project="p",
            location="europe-west1",
            image_uri=IMAGE,
            messages_bucket="b",
            worker_env={"AWS_SECRET_ACCESS_KEY": "x"},
        )


def _engine_available() -> bool:
    try:
        return bool(docker.from_env(timeout=2).ping())
    except Exception:
        return False


@pytest.mark.slow
@pytest.mark.skipif(
    not _engine_available(), reason="needs a Docker engine; this machine has only the docker CLI client"
)
def test_docker_launcher_trains_in_the_built_image(tmp_path):
    """Build the Dockerfile and run the whole graph with training in the container."""
    from recsys_assets.cli.pipeline import materialize_partition
    from recsys_assets.domain.synthetic import SMALL_SPEC
    from recsys_assets_tests.support.environment import FAST_SELECTION, local_env, seed

    repo = Path(__file__).parents[2]
    sha = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()
    image = f"recsys-test:{sha}"
    docker.from_env().images.build(path=str(repo), tag=image, target="training", buildargs={"RECSYS_CODE_VERSION": sha})
    resources = build_resources(local_env(tmp_path, RECSYS_TRAINING_LAUNCHER="docker", RECSYS_IMAGE=image))
    seed(resources)
    with dg.instance_for_test() as instance:
        outcome = materialize_partition(SMALL_SPEC.end_date.isoformat(), resources, instance, run_config=FAST_SELECTION)
    assert outcome.success, outcome.failures
    assert outcome.bundle is not None


# -- Vertex -----------------------------------------------------------------------------------


def vertex_launcher(vertex: VertexStandIn, s3: S3StandIn, **overrides: Any) -> VertexTrainingLauncher:
    fields: dict[str, Any] = dict(
        project="proj",
        location="europe-west1",
        image_uri=IMAGE,
        machine_type="n1-highmem-4",
        service_account="trainer@proj.iam.gserviceaccount.com",
        messages_store="s3",
        messages_bucket=s3.bucket,
        messages_prefix="pipes",
        messages_interval_seconds=0.2,
        poll_interval_seconds=0.05,
        max_poll_interval_seconds=0.2,
        api_endpoint=vertex.address,
        api_insecure=True,
        storage_endpoint_url=s3.endpoint_url,
        labels={"team": "recsys"},
    )
    fields.update(overrides)
    return VertexTrainingLauncher(**fields)


@pytest.fixture
def orchestrator_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The orchestrator's own (dummy) identity for the message bucket, from its environment as in production."""
    for name, value in DUMMY_AWS.items():
        monkeypatch.setenv(name, value)


@pytest.mark.slow
def test_vertex_launcher_runs_the_training_command_on_vertex(
    vertex_standin, vertex_messages_s3, orchestrator_aws, monkeypatch
):
    vertex_standin.ambient_env = dict(DUMMY_AWS)
    # The real command needs a training set; this test is about the launcher's wiring, so the
    # stand-in worker replaces the module (the slow test below runs the real one).
    monkeypatch.setattr(launchers, "TRAINING_COMMAND", ["python", str(WORKER)])
    launcher = vertex_launcher(vertex_standin, vertex_messages_s3)

    result = launch_in_asset(launcher, {"mode": "ok"}, partitioned=True)

    metadata = {k: v.value for k, v in result.asset_materializations_for_node("trained")[0].metadata.items()}
    assert metadata["vertex_job_state"] == "SUCCEEDED" and metadata["rows"] == 3
    (submitted,) = vertex_standin.submitted
    container = submitted.job_spec.worker_pool_specs[0].container_spec
    env = {v.name: v.value for v in container.env}
    assert container.image_uri == IMAGE == launcher.image
    assert env["AWS_ENDPOINT_URL"] == vertex_messages_s3.endpoint_url and set(env) >= PIPES_VARS
    assert {k: env[k] for k in TRAINING_ENV} == TRAINING_ENV and "AWS_SECRET_ACCESS_KEY" not in env
    assert submitted.display_name == f"recsys-train-2026-03-10-{result.run_id[:8]}"
    assert submitted.labels["dagster-run-id"] == result.run_id and submitted.labels["dagster-partition"] == "2026-03-10"
    assert submitted.job_spec.service_account == "trainer@proj.iam.gserviceaccount.com"
    assert all(key.startswith("pipes/") for key in vertex_messages_s3.keys()), vertex_messages_s3.keys()


def test_vertex_launcher_submits_the_training_module():
    launcher = VertexTrainingLauncher(project="p", location="us-central1", image_uri=IMAGE, messages_bucket="b")
    spec = launcher.job_spec("x")
    assert list(spec.command) == ["python", "-m", "recsys_assets.train"] and spec.image_uri == IMAGE
    assert spec.env == TRAINING_ENV and spec.replica_count == 1 and spec.machine_type == "n1-standard-8"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(image_uri="recsys:latest"), "is not pinned"),
        (dict(replica_count=2), "less than or equal to 1"),
        (dict(messages_store="azure"), "not one of gcs, s3"),
        (dict(accelerator_type="NVIDIA_TESLA_T4"), "needs accelerator_count >= 1"),
        (dict(poll_interval_seconds=5, max_poll_interval_seconds=1), "max_poll_interval_seconds"),
    ],
)
def test_vertex_launcher_refuses_bad_configuration(overrides, message):
    fields = {**dict(project="p", location="europe-west1", image_uri=IMAGE, messages_bucket="b"), **overrides}
    with pytest.raises(ValidationError, match=message):
        VertexTrainingLauncher(**fields)


# -- choosing the launcher ----------------------------------------------------------------------


def test_default_launcher_is_the_local_subprocess(tmp_path):
    launcher = build_training_launcher({}, tmp_path)
    assert isinstance(launcher, SubprocessTrainingLauncher) and launcher.image is None


def test_docker_launcher_from_environment(tmp_path):
    env = {"RECSYS_TRAINING_LAUNCHER": "docker", "RECSYS_IMAGE": IMAGE, "RECSYS_DOCKER_NETWORK": "recsys"}
    launcher = build_training_launcher(env, tmp_path)
    assert isinstance(launcher, DockerTrainingLauncher)
    assert launcher.image == IMAGE and launcher.network == "recsys"
    assert launcher.artifact_root == str((tmp_path / "artifacts").resolve()) and launcher.user
    remote = build_training_launcher({**env, "RECSYS_ARTIFACTS_URI": "s3://bucket/artifacts"}, tmp_path)
    assert remote.artifact_root is None and remote.user is None


def test_vertex_launcher_from_environment(tmp_path):
    env = {
        "RECSYS_TRAINING_LAUNCHER": "vertex",
        "RECSYS_IMAGE": IMAGE,
        "RECSYS_VERTEX_PROJECT": "proj",
        "RECSYS_VERTEX_LOCATION": "europe-west1",
        "RECSYS_VERTEX_MESSAGES_BUCKET": "proj-pipes",
        "RECSYS_VERTEX_ACCELERATOR_TYPE": "NVIDIA_L4",
        "RECSYS_VERTEX_ACCELERATOR_COUNT": "1",
        "RECSYS_VERTEX_PENDING_TIMEOUT_SECONDS": "900",
        "RECSYS_VERTEX_API_INSECURE": "false",
        "RECSYS_VERTEX_NETWORK": "",  # empty means unset
        "RECSYS_VERTEX_LABELS": '{"team": "recsys"}',
    }
    launcher = build_training_launcher(env, tmp_path)
    assert isinstance(launcher, VertexTrainingLauncher) and launcher.image == IMAGE
    assert (launcher.project, launcher.location, launcher.messages_bucket) == ("proj", "europe-west1", "proj-pipes")
    assert launcher.accelerator_type == "NVIDIA_L4" and launcher.accelerator_count == 1
    assert launcher.pending_timeout_seconds == 900.0 and launcher.api_insecure is False and launcher.network is None
    assert launcher.labels == {"team": "recsys"} and launcher.messages_store == "gcs"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RECSYS_TRAINING_LAUNCHER": "kubernetes"}, "not one of subprocess, docker, vertex"),
        ({"RECSYS_TRAINING_LAUNCHER": "docker"}, "needs RECSYS_IMAGE"),
        ({"RECSYS_TRAINING_LAUNCHER": "vertex", "RECSYS_IMAGE": "recsys:latest"}, "RECSYS_VERTEX_PROJECT"),
        ({"RECSYS_TRAINING_LAUNCHER": "docker", "RECSYS_IMAGE": "recsys:latest"}, "is not pinned"),
        (
            {"RECSYS_TRAINING_LAUNCHER": "vertex", "RECSYS_IMAGE": IMAGE, "RECSYS_VERTEX_PROJECT": "p"},
            "RECSYS_VERTEX_LOCATION",
        ),
        (
            {"RECSYS_TRAINING_LAUNCHER": "vertex", "RECSYS_IMAGE": IMAGE, "RECSYS_VERTEX_PROJCT": "p"},
            "unknown settings: RECSYS_VERTEX_PROJCT \\(did you mean RECSYS_VERTEX_PROJECT\\?\\)",
        ),
    ],
)
def test_launcher_selection_errors_name_the_variable(tmp_path, env, message):
    with pytest.raises(ConfigurationError, match=message):
        build_training_launcher(env, tmp_path)


# -- the real entrypoint through the fake Vertex ---------------------------------------------------


@pytest.mark.slow
def test_pipeline_trains_on_fake_vertex(tmp_path, vertex_standin, vertex_messages_s3, orchestrator_aws):
    """Switching RECSYS_TRAINING_LAUNCHER alone moves training to Vertex; the model and bundle are real."""
    from recsys_assets.cli.pipeline import materialize_partition
    from recsys_assets.domain.synthetic import SMALL_SPEC
    from recsys_assets_tests.support.environment import FAST_SELECTION, local_env, seed

    vertex_standin.ambient_env = dict(DUMMY_AWS)
    env = local_env(
        tmp_path,
        RECSYS_TRAINING_LAUNCHER="vertex",
        RECSYS_IMAGE=IMAGE,
        RECSYS_VERTEX_PROJECT="proj",
        RECSYS_VERTEX_LOCATION="europe-west1",
        RECSYS_VERTEX_MESSAGES_STORE="s3",
        RECSYS_VERTEX_MESSAGES_BUCKET=vertex_messages_s3.bucket,
        RECSYS_VERTEX_MESSAGES_INTERVAL_SECONDS="0.5",
        RECSYS_VERTEX_POLL_INTERVAL_SECONDS="0.1",
        RECSYS_VERTEX_MAX_POLL_INTERVAL_SECONDS="0.5",
        RECSYS_VERTEX_API_ENDPOINT=vertex_standin.address,
        RECSYS_VERTEX_API_INSECURE="true",
        RECSYS_VERTEX_STORAGE_ENDPOINT_URL=vertex_messages_s3.endpoint_url,
    )
    resources = build_resources(env)
    seed(resources)
    with dg.instance_for_test() as instance:
        outcome = materialize_partition(SMALL_SPEC.end_date.isoformat(), resources, instance, run_config=FAST_SELECTION)
        assert outcome.success, [*outcome.failures, *(job.log[-2000:] for job in vertex_standin.jobs.values())]
        event = instance.get_latest_materialization_event(dg.AssetKey("trained_model"))
        als = {k: v.value for k, v in event.asset_materialization.metadata.items()}
        worker_logs = [entry.user_message for entry in instance.all_logs(event.run_id)]
    assert als["vertex_job_state"] == "SUCCEEDED" and als["launcher"] == "VertexTrainingLauncher"
    assert als["search_trials"] >= 4 and als["image"] == IMAGE and als["vertex_run_seconds"] > 0
    # One custom job per step of the training child: the split, the baselines, the search and refit, the evaluation.
    assert len(vertex_standin.jobs) == 4
    assert all(job.process.returncode == 0 for job in vertex_standin.jobs.values())
    assert any(m.startswith("loaded training set") for m in worker_logs), "the worker's Pipes logs did not arrive"
    assert outcome.bundle is not None
    (manifest_path,) = (tmp_path / "model_store" / "models").glob("*/*/manifest.json")
    assert json.loads(manifest_path.read_text())["image"] == IMAGE


@pytest.mark.slow
def test_vertex_launcher_carries_pipes_over_gcs(vertex_standin, vertex_messages_gcs, monkeypatch):
    """The production pairing: Vertex AI with Pipes messages in a GCS bucket (an emulator here)."""
    monkeypatch.setattr(launchers, "TRAINING_COMMAND", ["python", str(WORKER)])
    launcher = vertex_launcher(
        vertex_standin,
        vertex_messages_gcs,  # type: ignore[arg-type]
        messages_store="gcs",
        messages_bucket=vertex_messages_gcs.bucket,
        storage_endpoint_url=vertex_messages_gcs.endpoint_url,
    )

    result = launch_in_asset(launcher, {"mode": "ok"})

    metadata = {k: v.value for k, v in result.asset_materializations_for_node("trained")[0].metadata.items()}
    assert metadata["vertex_job_state"] == "SUCCEEDED" and metadata["rows"] == 3
    env = {v.name: v.value for v in vertex_standin.submitted[0].job_spec.worker_pool_specs[0].container_spec.env}
    assert env["STORAGE_EMULATOR_HOST"] == vertex_messages_gcs.endpoint_url and "AWS_ENDPOINT_URL" not in env
    assert vertex_messages_gcs.keys() and all(key.startswith("pipes/") for key in vertex_messages_gcs.keys())
