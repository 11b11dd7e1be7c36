"""`PipesVertexCustomJobClient` against the fake Vertex AI job service, with Pipes over moto S3.

The worker is `pipes_worker.py`, run for real by the fake from the submitted container spec, so a
passing test means context reached the worker and its messages came back through the bucket. Those
round trips take 2-4 s each and are marked slow; the spec, label and image-pin tests are fast.
"""

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.errors import DagsterExecutionInterruptedError
from google.auth.credentials import AnonymousCredentials

from recsys_assets.pipes.channels import object_store_channels
from recsys_assets.pipes.vertex import (
    PipesVertexCustomJobClient,
    VertexJobSpec,
    console_url,
    label_safe,
)
from recsys_assets_tests.support.standins.s3 import S3StandIn
from recsys_assets_tests.support.standins.vertex import DUMMY_AWS, JobPlan, VertexStandIn

# Slow as a whole: most tests run real jobs on the stand-in, and the module needs aiplatform_v1 (a second to
# import), which the fast tier then never loads (see `pytest_ignore_collect` in the root conftest).
pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("pipes_worker.py")
IMAGE = "europe-west1-docker.pkg.dev/proj/repo/recsys:3f2c1ab9d0e4"
POLL = 0.05


@pytest.fixture
def vertex(vertex_standin: VertexStandIn, vertex_messages_s3: S3StandIn) -> VertexStandIn:
    # The machine's identity: on Vertex this is the job's service account, never the job spec.
    vertex_standin.ambient_env = dict(DUMMY_AWS)
    return vertex_standin


@pytest.fixture
def quick_session_close(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that never closes its session (cancelled, never started) makes Pipes wait 10 s; 1 s is enough here."""
    monkeypatch.setattr("dagster._core.pipes.utils.WAIT_FOR_LOGS_AFTER_EXECUTION_INTERVAL", 0)


def make_client(vertex: VertexStandIn, s3: S3StandIn, **overrides: Any) -> PipesVertexCustomJobClient:
    injector, reader = object_store_channels(
        "s3", bucket=s3.bucket, client=s3.client(), prefix="runs/pipes", interval=0.2
    )
    options: dict[str, Any] = dict(poll_interval=POLL, max_poll_interval=0.2, pending_timeout=30.0)
    options.update(overrides)
    return PipesVertexCustomJobClient(
        project="proj",
        location="europe-west1",
        client=vertex.client,
        context_injector=injector,
        message_reader=reader,
        **options,
    )


def worker_spec(s3: S3StandIn, **overrides: Any) -> VertexJobSpec:
    fields: dict[str, Any] = dict(
        image_uri=IMAGE,
        command=["python", str(WORKER)],
        env={"OPENBLAS_NUM_THREADS": "1", "AWS_ENDPOINT_URL": s3.endpoint_url},
    )
    fields.update(overrides)
    return VertexJobSpec(**fields)


def run_asset(
    client: PipesVertexCustomJobClient, spec: VertexJobSpec, mode: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    @dg.asset
    def trained(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        return client.run(context=context, job=spec, extras={"mode": mode}).get_materialize_result()

    return dg.materialize([trained], instance=instance, raise_on_error=False)


def step_error(result: dg.ExecuteInProcessResult) -> str:
    failures = result.get_step_failure_events()
    assert failures, "the step did not fail"
    error = failures[0].step_failure_data.error
    return error.to_string() if error else ""


def log_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.user_message for entry in instance.all_logs(run_id)]


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def test_success_reports_job_metadata_and_worker_metadata(vertex, vertex_messages_s3, instance):
    from google.cloud import aiplatform_v1  # imported here: a second of import, only the slow tests need it

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    client = make_client(vertex, vertex_messages_s3, sleep=sleep)
    vertex.script(JobPlan(pending_polls=3))
    spec = worker_spec(
        vertex_messages_s3,
        display_name="recsys-train-test",
        machine_type="n1-highmem-8",
        accelerator_type="NVIDIA_TESLA_T4",
        accelerator_count=1,
        service_account="trainer@proj.iam.gserviceaccount.com",
        network="projects/123/global/networks/vpc",
        persistent_resource_id="recsys-pool",
        base_output_directory="gs://proj-models/vertex",
        labels={"team": "recsys"},
    )

    started = time.perf_counter()
    result = run_asset(client, spec, "ok", instance)
    elapsed = time.perf_counter() - started
    assert result.success, step_error(result)

    metadata = {k: v.value for k, v in result.asset_materializations_for_node("trained")[0].metadata.items()}
    job_id = metadata["vertex_job_id"]
    assert metadata["vertex_job_name"] == f"projects/proj/locations/europe-west1/customJobs/{job_id}"
    assert metadata["vertex_job_state"] == "SUCCEEDED"
    assert metadata["vertex_console_url"] == (
        f"https://console.cloud.google.com/vertex-ai/locations/europe-west1/training/{job_id}?project=proj"
    )
    assert metadata["vertex_queued_seconds"] >= 0 and metadata["vertex_run_seconds"] > 0
    assert metadata["vertex_machine"] == "1 x n1-highmem-8 + 1 x NVIDIA_TESLA_T4"
    # Reported by the worker through the S3 message channel:
    assert metadata["rows"] == 3 and metadata["openblas_threads"] == "1"
    assert "pipes worker started in mode ok" in log_messages(instance, result.run_id)

    (submitted,) = vertex.submitted
    pool = submitted.job_spec.worker_pool_specs[0]
    env = {var.name: var.value for var in pool.container_spec.env}
    assert pool.container_spec.image_uri == IMAGE
    assert list(pool.container_spec.command) == ["python", str(WORKER)]
    assert {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"} <= set(env) and env["OPENBLAS_NUM_THREADS"] == "1"
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), "credentials leaked into the job spec"
    assert pool.machine_spec.machine_type == "n1-highmem-8" and pool.replica_count == 1
    assert (
        pool.machine_spec.accelerator_type == aiplatform_v1.AcceleratorType.NVIDIA_TESLA_T4
        and pool.machine_spec.accelerator_count == 1
    )
    assert submitted.display_name == "recsys-train-test"
    assert submitted.labels["dagster-run-id"] == result.run_id and submitted.labels["team"] == "recsys"
    assert submitted.job_spec.service_account == "trainer@proj.iam.gserviceaccount.com"
    assert submitted.job_spec.network == "projects/123/global/networks/vpc"
    assert submitted.job_spec.persistent_resource_id == "recsys-pool"
    assert submitted.job_spec.base_output_directory.output_uri_prefix == "gs://proj-models/vertex"
    # Every Pipes object sits under the configured prefix (the context file is deleted afterwards).
    assert vertex_messages_s3.keys() and all(k.startswith("runs/pipes/") for k in vertex_messages_s3.keys())

    # Backoff: starts at poll_interval, grows while the state holds, resets on a change, is capped.
    assert sleeps[0] == POLL and sleeps[1] == pytest.approx(POLL * 1.5) and max(sleeps) <= 0.2
    assert POLL in sleeps[3:], "the interval did not reset when the job started running"
    print(f"fake Vertex round trip: {elapsed:.2f}s, {len(sleeps)} polls")


def test_failed_job_surfaces_vertex_error_and_worker_exception(vertex, vertex_messages_s3, instance):
    from google.cloud import aiplatform_v1

    result = run_asset(make_client(vertex, vertex_messages_s3), worker_spec(vertex_messages_s3), "fail", instance)

    assert not result.success
    error = step_error(result)
    assert "ended FAILED" in error and "exited with a non-zero status of 1" in error
    assert vertex.only_job.job.state == aiplatform_v1.JobState.JOB_STATE_FAILED
    assert "boom: the training set is empty" in vertex.only_job.log
    # Dagster also hears the worker's own exception through the message channel.
    closed = [
        entry.dagster_event.engine_event_data.error
        for entry in instance.all_logs(result.run_id)
        if entry.user_message == "[pipes] external process pipes closed with exception"
    ]
    assert closed and "boom: the training set is empty" in closed[0].message
    assert vertex.cancelled == [], "a job that ended on its own must not be cancelled"
    assert not [k for k in vertex_messages_s3.keys() if k.endswith("context.json")], "context file left behind"


def test_job_failed_by_vertex_itself_is_reported(vertex, vertex_messages_s3, instance, quick_session_close):
    vertex.script(JobPlan(outcome="fail", error_message="Unable to pull image: manifest unknown"))
    result = run_asset(make_client(vertex, vertex_messages_s3), worker_spec(vertex_messages_s3), "ok", instance)

    assert not result.success
    assert "ended FAILED: Unable to pull image: manifest unknown" in step_error(result)


def test_pending_timeout_cancels_and_reports(vertex, vertex_messages_s3, instance, quick_session_close):
    vertex.script(JobPlan(outcome="stay_pending"))
    client = make_client(vertex, vertex_messages_s3, pending_timeout=0.3)

    result = run_asset(client, worker_spec(vertex_messages_s3), "ok", instance)

    assert not result.success
    error = step_error(result)
    assert "was still PENDING after" in error and "pending_timeout 0.3s" in error and "cancelled" in error
    assert vertex.cancelled == [vertex.only_job.job.name]
    assert vertex.only_job.process is None, "a job that never started must not have run"
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None and "vertex_console_url" in failure.metadata


@pytest.mark.parametrize("forward_termination", [True, False])
def test_interrupted_run_cancels_the_job(
    vertex, vertex_messages_s3, instance, quick_session_close, forward_termination
):
    """What happens when the run is terminated: Dagster raises DagsterExecutionInterruptedError in the step."""

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        if vertex.jobs and vertex.only_job.process is not None:
            raise DagsterExecutionInterruptedError("run terminated")

    client = make_client(vertex, vertex_messages_s3, sleep=sleep, forward_termination=forward_termination)
    result = run_asset(client, worker_spec(vertex_messages_s3), "hang", instance)

    assert not result.success
    if forward_termination:
        assert vertex.cancelled == [vertex.only_job.job.name]
        assert vertex.only_job.process.poll() is not None, "the worker still runs after the cancel"
        assert any("cancelling Vertex AI custom job" in (m or "") for m in log_messages(instance, result.run_id))
    else:
        assert vertex.cancelled == [] and vertex.only_job.process.poll() is None


def test_job_cancelled_elsewhere_is_reported_not_cancelled_again(
    vertex, vertex_messages_s3, instance, quick_session_close
):
    """Someone cancels the job in the console while it runs: the step fails with the job's own state."""
    cancelled_by_hand: list[str] = []

    def sleep(seconds: float) -> None:
        time.sleep(seconds)
        if not cancelled_by_hand and vertex.jobs and vertex.only_job.process is not None:
            cancelled_by_hand.append(vertex.only_job.job.name)
            vertex.client.cancel_custom_job(name=cancelled_by_hand[0])

    result = run_asset(
        make_client(vertex, vertex_messages_s3, sleep=sleep), worker_spec(vertex_messages_s3), "hang", instance
    )

    assert not result.success
    assert "ended CANCELLED: CANCELED" in step_error(result)
    assert vertex.cancelled == cancelled_by_hand, "the client cancelled a job that had already ended"


def test_sigint_during_a_running_job_cancels_it(vertex, vertex_messages_s3, instance, quick_session_close):
    """The real signal path: a terminated run's process gets SIGINT while the client sleeps between polls."""
    client = make_client(vertex, vertex_messages_s3)

    def interrupt_once_running() -> None:
        if vertex.wait_until_running(timeout=30):
            time.sleep(0.3)  # let the client go back to polling
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    with pytest.raises((KeyboardInterrupt, DagsterExecutionInterruptedError)):
        # in-process execution re-raises the interrupt, as the run worker would before marking the run CANCELED
        @dg.asset
        def trained(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
            return client.run(
                context=context, job=worker_spec(vertex_messages_s3), extras={"mode": "hang"}
            ).get_materialize_result()

        dg.materialize([trained], instance=instance)
    assert vertex.cancelled == [vertex.only_job.job.name]


def test_custom_job_given_as_proto_keeps_its_fields(vertex, vertex_messages_s3):
    client = make_client(vertex, vertex_messages_s3)
    job = worker_spec(vertex_messages_s3, replica_count=3).to_custom_job("given")
    job.labels = {"dagster-run-id": "spoofed", "owner": "ml"}

    prepared = client.prepare_job(
        job, {"DAGSTER_PIPES_CONTEXT": "c", "DAGSTER_PIPES_MESSAGES": "m"}, {"dagster/run-id": "ABC-123"}
    )

    chief, workers = prepared.job_spec.worker_pool_specs
    assert (chief.replica_count, workers.replica_count) == (1, 2)
    assert {v.name for v in chief.container_spec.env} >= {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    # Only the chief talks Pipes: two writers would overwrite each other's numbered chunks.
    assert not {v.name for v in workers.container_spec.env} & {"DAGSTER_PIPES_CONTEXT", "DAGSTER_PIPES_MESSAGES"}
    assert prepared.labels == {"dagster-run-id": "abc-123", "owner": "ml"}
    assert len(job.job_spec.worker_pool_specs[0].container_spec.env) == 2, "the caller's job was modified"


def test_default_client_targets_the_regional_endpoint():
    client = PipesVertexCustomJobClient(
        project="proj",
        location="europe-west4",
        message_reader=dg.PipesTempFileMessageReader(),
        credentials=AnonymousCredentials(),
    )
    assert client.client.api_endpoint == "europe-west4-aiplatform.googleapis.com"


@pytest.mark.parametrize(
    "value, key, expected",
    [
        ("dagster/run-id", True, "dagster-run-id"),
        ("0F3C2A9E-1111-4E5B-9F00-ABCDEF012345", False, "0f3c2a9e-1111-4e5b-9f00-abcdef012345"),
        ("me@example.com", False, "me-example-com"),
        ("__ASSET_JOB", False, "__asset_job"),
        ("9lives", True, "k9lives"),
        ("x" * 80, False, "x" * 63),
    ],
)
def test_label_safe(value, key, expected):
    assert label_safe(value, key=key) == expected


def test_console_url_and_bad_names():
    assert console_url("projects/p/locations/us-central1/customJobs/42") == (
        "https://console.cloud.google.com/vertex-ai/locations/us-central1/training/42?project=p"
    )
    with pytest.raises(ValueError, match="not a custom job name"):
        console_url("customJobs/42")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(accelerator_type="T4", accelerator_count=1), "not an aiplatform_v1.AcceleratorType"),
        (dict(accelerator_type="NVIDIA_L4"), "needs accelerator_count >= 1"),
        (dict(accelerator_count=2), "accelerator_type is not"),
        (dict(replica_count=0), "replica_count must be at least 1"),
    ],
)
def test_job_spec_refuses_inconsistent_machines(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VertexJobSpec(image_uri=IMAGE, command=["python"], **kwargs)
