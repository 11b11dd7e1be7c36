"""A local Vertex AI `JobService` that really runs the submitted container command.

No Vertex AI emulator exists, so this is a gRPC server built from the `aiplatform_v1` request and
response types, reached by the real `JobServiceClient` over an insecure channel. Create returns
PENDING; later `GetCustomJob` calls move the job on as each test scripts it (see `JobPlan`). When a
job "starts", worker pool 0's container command runs here as a subprocess with exactly the
environment the spec carries (plus what `VertexStandIn.ambient_env` says the machine provides, like a
service account would), so Pipes context and messages really travel through the object store.

Differences from the real service that tests must not rely on: no IAM, no image pull (`python` in the
command is this interpreter), one process even for several replicas, and the state changes on polls
rather than on a clock.

Fixtures: `vertex_standin` (the service plus a connected client), `vertex_messages_s3` (a fresh bucket
on the moto S3 server of `standins.s3`) and `vertex_messages_gcs` (a bucket on
`gcp-storage-emulator`), the buckets carrying Pipes context and messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import grpc
import pytest
from google.protobuf import empty_pb2
from google.rpc import code_pb2, status_pb2

from recsys_assets_tests.support.standins.s3 import S3StandIn

# aiplatform_v1 takes over a second to import: every test process loads this plugin, few use Vertex.
if TYPE_CHECKING:
    from google.cloud.aiplatform_v1 import JobServiceClient
    from google.cloud.aiplatform_v1.types import (
        CancelCustomJobRequest,
        CreateCustomJobRequest,
        CustomJob,
        GetCustomJobRequest,
        JobState,
    )

SERVICE = "google.cloud.aiplatform.v1.JobService"
VERTEX_EXIT_MESSAGE = (
    "The replica workerpool0-0 exited with a non-zero status of {code}. Termination reason: Error. "
    "To find out more about why your job exited please check the logs: "
    "https://console.cloud.google.com/logs/viewer?project={project}"
)
MESSAGES_BUCKET = "pipes-messages"
DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@dataclass
class JobPlan:
    """How one job behaves.

    Attributes:
        pending_polls: `GetCustomJob` calls that still answer PENDING before the job starts.
        outcome: `run` runs the command and ends SUCCEEDED or FAILED by its exit code; `fail` starts
            nothing and ends FAILED with `error_message`; `stay_pending` never leaves PENDING.
        error_message: The error of a `fail` outcome.
    """

    pending_polls: int = 1
    outcome: Literal["run", "fail", "stay_pending"] = "run"
    error_message: str = "Resources are insufficient in region: europe-west1."


@dataclass
class FakeJob:
    job: CustomJob
    plan: JobPlan
    polls: int = 0
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def log(self) -> str:
        """Everything the worker process wrote to stdout and stderr (what Cloud Logging would hold)."""
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""


@dataclass
class VertexStandIn:
    """The service state a test scripts and inspects."""

    workdir: Path
    ambient_env: dict[str, str] = field(default_factory=dict)
    default_plan: JobPlan = field(default_factory=JobPlan)
    plans: list[JobPlan] = field(default_factory=list)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    submitted: list[CustomJob] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    get_calls: int = 0
    address: str = ""
    client: JobServiceClient | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _started: threading.Event = field(default_factory=threading.Event)

    def script(self, *plans: JobPlan) -> None:
        """Make the next created jobs follow `plans`, in order; later ones follow `default_plan`."""
        self.plans.extend(plans)

    @property
    def only_job(self) -> FakeJob:
        assert len(self.jobs) == 1, f"expected one job, got {list(self.jobs)}"
        return next(iter(self.jobs.values()))

    def wait_until_running(self, timeout: float = 30.0) -> bool:
        """Block until some job's worker process has started."""
        return self._started.wait(timeout)

    # -- RPCs -------------------------------------------------------------------------------

    def create(self, request: CreateCustomJobRequest, context: grpc.ServicerContext) -> CustomJob:
        from google.cloud.aiplatform_v1.types import JobState

        with self._lock:
            # `submitted` keeps the jobs exactly as the client sent them, in creation order.
            self.submitted.append(_copy(request.custom_job))
            job = _copy(request.custom_job)
            job.name = f"{request.parent}/customJobs/{1000 + len(self.jobs)}"
            job.state = JobState.JOB_STATE_PENDING
            job.create_time = job.update_time = datetime.now(UTC)
            self.jobs[job.name] = FakeJob(job=job, plan=self.plans.pop(0) if self.plans else self.default_plan)
            return _copy(job)

    def get(self, request: GetCustomJobRequest, context: grpc.ServicerContext) -> CustomJob:
        with self._lock:
            self.get_calls += 1
            fake = self.jobs.get(request.name)
            if fake is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"CustomJob {request.name} not found")
            self._advance(fake)
            return _copy(fake.job)

    def cancel(self, request: CancelCustomJobRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        from google.cloud.aiplatform_v1.types import JobState

        with self._lock:
            fake = self.jobs.get(request.name)
            if fake is None:
                context.abort(grpc.StatusCode.NOT_FOUND, f"CustomJob {request.name} not found")
            self.cancelled.append(request.name)
            if fake.job.state not in (JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED):
                self._stop_process(fake)
                # Vertex acknowledges at once and reports CANCELLING until the machines are released.
                fake.job.state = JobState.JOB_STATE_CANCELLING
            return empty_pb2.Empty()

    # -- state machine ----------------------------------------------------------------------

    def _advance(self, fake: FakeJob) -> None:
        from google.cloud.aiplatform_v1.types import JobState

        job, now = fake.job, datetime.now(UTC)
        fake.polls += 1
        if job.state == JobState.JOB_STATE_PENDING:
            if fake.plan.outcome == "stay_pending" or fake.polls <= fake.plan.pending_polls:
                return
            job.state, job.start_time = JobState.JOB_STATE_RUNNING, now
            if fake.plan.outcome == "run":
                self._start_process(fake)
        elif job.state == JobState.JOB_STATE_RUNNING:
            if fake.plan.outcome == "fail":
                self._end(fake, JobState.JOB_STATE_FAILED, code_pb2.INTERNAL, fake.plan.error_message)
            elif fake.process is not None and (code := fake.process.poll()) is not None:
                if code == 0:
                    self._end(fake, JobState.JOB_STATE_SUCCEEDED)
                else:
                    project = job.name.split("/")[1]
                    message = VERTEX_EXIT_MESSAGE.format(code=code, project=project)
                    self._end(fake, JobState.JOB_STATE_FAILED, code_pb2.INTERNAL, message)
        elif job.state == JobState.JOB_STATE_CANCELLING:
            self._end(fake, JobState.JOB_STATE_CANCELLED, code_pb2.CANCELLED, "CANCELED")
        job.update_time = now

    @staticmethod
    def _end(fake: FakeJob, state: JobState, code: int = code_pb2.OK, message: str = "") -> None:
        fake.job.state, fake.job.end_time = state, datetime.now(UTC)
        if code != code_pb2.OK:
            fake.job.error = status_pb2.Status(code=code, message=message)

    def _start_process(self, fake: FakeJob) -> None:
        container = fake.job.job_spec.worker_pool_specs[0].container_spec
        command = [*container.command, *container.args]
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable  # the "image" is this virtualenv
        # A container starts from a clean environment: only the spec's variables and the machine's.
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "LANG": "C.UTF-8",
            # The "image" holds this checkout's code, which PYTHONPATH may point at (a worktree).
            **({"PYTHONPATH": os.environ["PYTHONPATH"]} if "PYTHONPATH" in os.environ else {}),
            **self.ambient_env,
            **{var.name: var.value for var in container.env},
        }
        job_dir = self.workdir / fake.job.name.rsplit("/", 1)[-1]
        job_dir.mkdir(parents=True, exist_ok=True)
        fake.log_path = job_dir / "worker.log"
        with fake.log_path.open("wb") as log:
            fake.process = subprocess.Popen(
                command, env=env, cwd=job_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._started.set()

    @staticmethod
    def _stop_process(fake: FakeJob) -> None:
        if fake.process is not None and fake.process.poll() is None:
            os.killpg(fake.process.pid, signal.SIGTERM)
            try:
                fake.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(fake.process.pid, signal.SIGKILL)
                fake.process.wait()

    def shutdown(self) -> None:
        with self._lock:
            for fake in self.jobs.values():
                self._stop_process(fake)


def _copy(job: CustomJob) -> CustomJob:
    from google.cloud.aiplatform_v1.types import CustomJob

    return CustomJob.deserialize(CustomJob.serialize(job))


def _handler(fn, request_type, response_serializer):
    return grpc.unary_unary_rpc_method_handler(
        fn, request_deserializer=request_type.deserialize, response_serializer=response_serializer
    )


@pytest.fixture
def vertex_standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VertexStandIn]:
    """A running fake `JobService` and a real `JobServiceClient` connected to it."""
    from google.cloud.aiplatform_v1 import JobServiceClient
    from google.cloud.aiplatform_v1.services.job_service.transports import JobServiceGrpcTransport
    from google.cloud.aiplatform_v1.types import (
        CancelCustomJobRequest,
        CreateCustomJobRequest,
        CustomJob,
        GetCustomJobRequest,
    )

    state = VertexStandIn(workdir=tmp_path_factory.mktemp("vertex"))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    "CreateCustomJob": _handler(state.create, CreateCustomJobRequest, CustomJob.serialize),
                    "GetCustomJob": _handler(state.get, GetCustomJobRequest, CustomJob.serialize),
                    "CancelCustomJob": _handler(
                        state.cancel, CancelCustomJobRequest, empty_pb2.Empty.SerializeToString
                    ),
                },
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    state.address = f"127.0.0.1:{port}"
    # Setting only api_endpoint would give a TLS channel, which a local server cannot answer.
    channel = grpc.insecure_channel(state.address)
    state.client = JobServiceClient(transport=JobServiceGrpcTransport(channel=channel))
    try:
        yield state
    finally:
        state.shutdown()
        channel.close()
        server.stop(grace=None)


@pytest.fixture
def vertex_messages_s3(s3_server: str) -> S3StandIn:
    """A new, empty bucket for Pipes context and messages on the session's moto server (`standins.s3`)."""
    # A fresh bucket per test rather than a reset: us-east-1 answers a repeated CreateBucket with
    # 200, so "create or clean" cannot tell a leftover bucket apart from a new one.
    standin = S3StandIn(endpoint_url=s3_server, bucket=f"{MESSAGES_BUCKET}-{uuid.uuid4().hex[:12]}")
    standin.client().create_bucket(Bucket=standin.bucket)
    return standin


@dataclass(frozen=True)
class GCSStandIn:
    """A `gcp-storage-emulator` server with the Pipes messages bucket created."""

    endpoint_url: str
    bucket: str

    def client(self):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.endpoint_url}
        )

    def keys(self, prefix: str = "") -> list[str]:
        return [blob.name for blob in self.client().list_blobs(self.bucket, prefix=prefix)]


@pytest.fixture
def vertex_messages_gcs() -> Iterator[GCSStandIn]:
    """An in-memory GCS emulator with an empty bucket for Pipes context and messages."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True, default_bucket=MESSAGES_BUCKET)
    server.start()
    port = server._api._httpd.server_address[1]  # the emulator has no public accessor for a port-0 bind
    try:
        yield GCSStandIn(endpoint_url=f"http://127.0.0.1:{port}", bucket=MESSAGES_BUCKET)
    finally:
        server.stop()
