"""A Dagster Pipes client for Vertex AI custom jobs (no Dagster package ships one).

Shaped like `dagster_gcp.pipes.PipesDataprocJobClient`: open a Pipes session, put its bootstrap
variables into the job, create the job, poll it to a terminal state, and cancel it if the Dagster
run stops waiting. On top of that it gives up on jobs that sit in the queue too long (Vertex can
hold a job PENDING for hours when a region has no capacity for the requested accelerator) and
returns the job's name, state, console link and timings as materialization metadata.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import dagster as dg
from dagster._core.definitions.resource_annotation import TreatAsResourceParam
from dagster._core.errors import DagsterExecutionInterruptedError
from google.auth.credentials import Credentials
from google.cloud.aiplatform_v1 import (
    AcceleratorType,
    ContainerSpec,
    CustomJob,
    CustomJobSpec,
    EnvVar,
    GcsDestination,
    JobServiceClient,
    JobState,
    MachineSpec,
    Scheduling,
    WorkerPoolSpec,
)
from google.protobuf import duration_pb2

TERMINAL_STATES = frozenset(
    {
        JobState.JOB_STATE_SUCCEEDED,
        JobState.JOB_STATE_FAILED,
        JobState.JOB_STATE_CANCELLED,
        JobState.JOB_STATE_EXPIRED,
        JobState.JOB_STATE_PARTIALLY_SUCCEEDED,
    }
)
# States in which no machine runs yet; the pending timeout applies only to these.
WAITING_STATES = frozenset({JobState.JOB_STATE_UNSPECIFIED, JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_PENDING})

CONSOLE_URL = "https://console.cloud.google.com/vertex-ai/locations/{location}/training/{job_id}?project={project}"

_LABEL_CHARS = re.compile(r"[^a-z0-9_-]")
_MAX_LABEL = 63


def state_name(state: JobState | int) -> str:
    """`JobState.JOB_STATE_SUCCEEDED` -> `"SUCCEEDED"`."""
    return JobState(state).name.removeprefix("JOB_STATE_")


def label_safe(value: str, *, key: bool = False) -> str:
    """`value` made into a valid GCP label key or value.

    GCP labels allow lowercase letters, digits, `_` and `-`, at most 63 characters, and keys must
    start with a letter. Run ids (UUIDs) pass through unchanged, so a label search finds the run.
    """
    cleaned = _LABEL_CHARS.sub("-", value.lower())[:_MAX_LABEL]
    if key and not cleaned[:1].isalpha():
        cleaned = f"k{cleaned}"[:_MAX_LABEL]
    return cleaned


def console_url(job_name: str) -> str:
    """Cloud console page of the custom job `projects/{p}/locations/{l}/customJobs/{id}`."""
    parts = JobServiceClient.parse_custom_job_path(job_name)
    if not parts:
        raise ValueError(f"{job_name!r} is not a custom job name (projects/{{p}}/locations/{{l}}/customJobs/{{id}})")
    return CONSOLE_URL.format(location=parts["location"], job_id=parts["custom_job"], project=parts["project"])


@dataclass(frozen=True)
class VertexJobSpec:
    """What to run and on which machines; `PipesVertexCustomJobClient` turns it into a `CustomJob`.

    Attributes:
        image_uri: Container image of every replica (pin it: see `recsys_assets.resources.image_ref`).
        command: Container entrypoint, e.g. `["python", "-m", "recsys_assets.train"]`.
        args: Arguments after `command`.
        env: Plain (non-secret) environment variables; the Pipes bootstrap variables are added.
        display_name: Console name; defaults to `dagster-<run id prefix>`.
        machine_type: Compute Engine machine type of each replica.
        accelerator_type: `aiplatform_v1.AcceleratorType` member name, e.g. `NVIDIA_TESLA_T4`.
        accelerator_count: Accelerators per replica (0 when `accelerator_type` is unset).
        replica_count: Total replicas: one chief in worker pool 0, the rest in worker pool 1.
        service_account: Service account the job runs as (the default Vertex agent when unset).
        network: VPC network `projects/{number}/global/networks/{name}` to peer with.
        labels: Extra labels; the Dagster run labels are added and win on a clash.
        persistent_resource_id: Run on this persistent resource instead of on-demand machines.
        base_output_directory: `gs://` prefix Vertex exposes to the job as `AIP_MODEL_DIR` and friends.
        max_run_seconds: Vertex stops the job after this long running (`scheduling.timeout`).
    """

    image_uri: str
    command: Sequence[str]
    args: Sequence[str] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    display_name: str | None = None
    machine_type: str = "n1-standard-4"
    accelerator_type: str | None = None
    accelerator_count: int = 0
    replica_count: int = 1
    service_account: str | None = None
    network: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    persistent_resource_id: str | None = None
    base_output_directory: str | None = None
    max_run_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.replica_count < 1:
            raise ValueError(f"replica_count must be at least 1, got {self.replica_count}")
        if self.accelerator_type is not None:
            if self.accelerator_type not in AcceleratorType.__members__:
                raise ValueError(
                    f"accelerator_type {self.accelerator_type!r} is not an aiplatform_v1.AcceleratorType "
                    f"(e.g. {', '.join(list(AcceleratorType.__members__)[1:4])})"
                )
            if self.accelerator_count < 1:
                raise ValueError(f"accelerator_type {self.accelerator_type} needs accelerator_count >= 1")
        elif self.accelerator_count:
            raise ValueError("accelerator_count is set but accelerator_type is not")

    def to_custom_job(self, default_display_name: str) -> CustomJob:
        """The `CustomJob` this spec describes (before Pipes variables and run labels are added)."""
        machine = MachineSpec(machine_type=self.machine_type)
        if self.accelerator_type:
            machine.accelerator_type = AcceleratorType[self.accelerator_type]
            machine.accelerator_count = self.accelerator_count
        container = ContainerSpec(
            image_uri=self.image_uri,
            command=list(self.command),
            args=list(self.args),
            env=[EnvVar(name=k, value=v) for k, v in self.env.items()],
        )
        pools = [WorkerPoolSpec(machine_spec=machine, replica_count=1, container_spec=container)]
        if self.replica_count > 1:
            # Vertex requires exactly one replica in pool 0 (the chief); the others form pool 1.
            pools.append(
                WorkerPoolSpec(machine_spec=machine, replica_count=self.replica_count - 1, container_spec=container)
            )
        spec = CustomJobSpec(worker_pool_specs=pools)
        if self.service_account:
            spec.service_account = self.service_account
        if self.network:
            spec.network = self.network
        if self.persistent_resource_id:
            spec.persistent_resource_id = self.persistent_resource_id
        if self.base_output_directory:
            spec.base_output_directory = GcsDestination(output_uri_prefix=self.base_output_directory)
        if self.max_run_seconds:
            spec.scheduling = Scheduling(timeout=duration_pb2.Duration(seconds=int(self.max_run_seconds)))
        return CustomJob(
            display_name=self.display_name or default_display_name,
            job_spec=spec,
            labels=dict(self.labels),
        )


class PipesVertexJobError(dg.Failure):
    """A Vertex AI custom job ended in a state other than SUCCEEDED, or never left the queue."""

    def __init__(self, job: CustomJob, reason: str, metadata: Mapping[str, Any]):
        self.job = job
        self.state = state_name(job.state)
        super().__init__(description=f"Vertex AI custom job {job.name} {reason}", metadata=dict(metadata))


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def _timestamp(job: CustomJob, name: str) -> datetime | None:
    # proto-plus returns a zero datetime for an unset Timestamp; presence is the reliable test.
    return getattr(job, name) if name in job else None


def job_metadata(job: CustomJob) -> dict[str, Any]:
    """Materialization metadata describing `job`: name, state, console link and timings.

    Args:
        job: The custom job as last returned by `get_custom_job`.

    Returns:
        Metadata with `vertex_job_name`, `vertex_job_id`, `vertex_job_state`, `vertex_console_url`,
        and when known `vertex_queued_seconds` (create to start) and `vertex_run_seconds` (start to end).
    """
    created, started, ended = (_timestamp(job, n) for n in ("create_time", "start_time", "end_time"))
    metadata: dict[str, Any] = {
        "vertex_job_name": job.name,
        "vertex_job_id": job.name.rsplit("/", 1)[-1],
        "vertex_job_state": state_name(job.state),
        "vertex_console_url": dg.MetadataValue.url(console_url(job.name)),
    }
    if (queued := _seconds_between(created, started)) is not None:
        metadata["vertex_queued_seconds"] = queued
    if (ran := _seconds_between(started, ended)) is not None:
        metadata["vertex_run_seconds"] = ran
    pools = job.job_spec.worker_pool_specs
    if pools:
        machine = pools[0].machine_spec
        accel = f" + {machine.accelerator_count} x {machine.accelerator_type.name}" if machine.accelerator_count else ""
        metadata["vertex_machine"] = f"{sum(p.replica_count for p in pools)} x {machine.machine_type}{accel}"
    return metadata


class PipesVertexCustomJobClient(dg.PipesClient, TreatAsResourceParam):
    """Runs a Vertex AI custom job as a Dagster Pipes external process.

    Args:
        project: Google Cloud project of the job.
        location: Vertex AI region, e.g. `europe-west1`.
        message_reader: Reader for the worker's messages; a worker's stdout only reaches Cloud
            Logging, so use a bucket (see `recsys_assets.pipes.channels.object_store_channels`).
        context_injector: How the worker gets its context; a bucket as well unless the context is
            small enough for an environment variable (the default, `PipesEnvContextInjector`).
        client: A ready `JobServiceClient` (tests pass one over an insecure channel). By default
            one is built on first use for the regional endpoint `{location}-aiplatform.googleapis.com`.
        credentials: Credentials for the client built by default (application default otherwise).
        api_endpoint: Endpoint override for the client built by default.
        forward_termination: Cancel the job when the orchestrator stops waiting for it (run
            terminated, step interrupted, or an error while polling): nobody will read its result.
        poll_interval: First wait between `get_custom_job` calls, in seconds.
        max_poll_interval: The wait grows by `backoff` after each unchanged poll up to this.
        backoff: Growth factor of the wait; it resets when the job changes state.
        pending_timeout: Seconds a job may stay QUEUED/PENDING before it is cancelled and the step
            fails (None waits forever).
        sleep: Sleep function of the poll loop (replaced in tests).
        clock: Monotonic clock for the pending timeout (replaced in tests).
    """

    def __init__(
        self,
        *,
        project: str,
        location: str,
        message_reader: dg.PipesMessageReader,
        context_injector: dg.PipesContextInjector | None = None,
        client: JobServiceClient | None = None,
        credentials: Credentials | None = None,
        api_endpoint: str | None = None,
        forward_termination: bool = True,
        poll_interval: float = 10.0,
        max_poll_interval: float = 60.0,
        backoff: float = 1.5,
        pending_timeout: float | None = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if poll_interval <= 0 or max_poll_interval < poll_interval or backoff < 1:
            raise ValueError("need 0 < poll_interval <= max_poll_interval and backoff >= 1")
        self.project = project
        self.location = location
        self._message_reader = message_reader
        self._context_injector = context_injector or dg.PipesEnvContextInjector()
        self._client = client
        self._credentials = credentials
        self._api_endpoint = api_endpoint or f"{location}-aiplatform.googleapis.com"
        self.forward_termination = forward_termination
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.backoff = backoff
        self.pending_timeout = pending_timeout
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False

    @property
    def client(self) -> JobServiceClient:
        """The job service client, built on first use so loading definitions needs no credentials."""
        if self._client is None:
            self._client = JobServiceClient(
                credentials=self._credentials, client_options={"api_endpoint": self._api_endpoint}
            )
        return self._client

    @property
    def parent(self) -> str:
        return JobServiceClient.common_location_path(self.project, self.location)

    def run(  # type: ignore[override]
        self,
        *,
        context: dg.OpExecutionContext | dg.AssetExecutionContext,
        job: VertexJobSpec | CustomJob,
        extras: Mapping[str, Any] | None = None,
    ) -> dg.PipesClientCompletedInvocation:
        """Create the custom job with Pipes wired in, wait for it, and return what it reported.

        Args:
            context: Context of the asset or op that launches the job.
            job: What to run; a `CustomJob` is used as given apart from the added Pipes
                variables (worker pool 0 only) and Dagster run labels.
            extras: Pipes extras for the worker.

        Returns:
            The completed invocation; its metadata (see `job_metadata`) is merged into every
            result, so `get_materialize_result()` carries the Vertex job name, state, link and timings.

        Raises:
            PipesVertexJobError: The job failed, was cancelled or expired, or stayed queued past
                `pending_timeout` (it is cancelled first).
        """
        with dg.open_pipes_session(
            context=context,
            message_reader=self._message_reader,
            context_injector=self._context_injector,
            extras=dict(extras or {}),
        ) as session:
            custom_job = self.prepare_job(job, session.get_bootstrap_env_vars(), session.default_remote_invocation_info)
            created = self.client.create_custom_job(parent=self.parent, custom_job=custom_job)
            context.log.info(f"[pipes] Vertex AI custom job {created.name} created: {console_url(created.name)}")
            try:
                final = self._wait(context, created)
            except BaseException as exc:
                self._stop_waiting(context, created, exc)
                raise
            metadata = job_metadata(final)
            if final.state != JobState.JOB_STATE_SUCCEEDED:
                message = final.error.message or "no error message"
                raise PipesVertexJobError(final, f"ended {state_name(final.state)}: {message}", metadata)
            context.log.info(f"[pipes] Vertex AI custom job {final.name} succeeded")
            return dg.PipesClientCompletedInvocation(session, metadata=metadata)

    def prepare_job(
        self, job: VertexJobSpec | CustomJob, bootstrap_env: Mapping[str, str], run_info: Mapping[str, str]
    ) -> CustomJob:
        """The job to submit: `job` plus the Pipes variables on the chief and the run's labels.

        Only worker pool 0 gets the Pipes variables: every process that opens the session writes
        message chunks with the same numbering, so a second writer would overwrite the first.
        """
        run_id = run_info.get("dagster/run-id", "")
        if isinstance(job, VertexJobSpec):
            custom_job = job.to_custom_job(default_display_name=f"dagster-{run_id[:8] or 'run'}")
        else:
            custom_job = cast(CustomJob, CustomJob.deserialize(CustomJob.serialize(job)))
        pools = custom_job.job_spec.worker_pool_specs
        if not pools:
            raise ValueError("the custom job has no worker pool to run the Pipes process in")
        target = pools[0].container_spec if pools[0].container_spec.image_uri else pools[0].python_package_spec
        kept = [var for var in target.env if var.name not in bootstrap_env]
        target.env = [*kept, *(EnvVar(name=k, value=v) for k, v in bootstrap_env.items())]
        labels = dict(custom_job.labels)
        labels.update({label_safe(k, key=True): label_safe(v) for k, v in run_info.items()})
        custom_job.labels = labels
        return custom_job

    def _wait(self, context: dg.OpExecutionContext | dg.AssetExecutionContext, job: CustomJob) -> CustomJob:
        created_at = self._clock()
        interval = self.poll_interval
        state = job.state
        context.log.info(f"[pipes] Vertex AI custom job {job.name} is {state_name(state)}")
        while job.state not in TERMINAL_STATES:
            waited = self._clock() - created_at
            if self.pending_timeout is not None and job.state in WAITING_STATES and waited > self.pending_timeout:
                self._cancel(context, job)
                raise PipesVertexJobError(
                    job,
                    f"was still {state_name(job.state)} after {waited:.1f}s (pending_timeout "
                    f"{self.pending_timeout:g}s) and was cancelled; the region may lack capacity for "
                    f"{job.job_spec.worker_pool_specs[0].machine_spec.machine_type}",
                    job_metadata(job),
                )
            self._sleep(interval)
            job = self.client.get_custom_job(name=job.name)
            if job.state != state:
                state = job.state
                interval = self.poll_interval
                context.log.info(f"[pipes] Vertex AI custom job {job.name} is {state_name(state)}")
            else:
                interval = min(interval * self.backoff, self.max_poll_interval)
        return job

    def _stop_waiting(
        self, context: dg.OpExecutionContext | dg.AssetExecutionContext, job: CustomJob, exc: BaseException
    ) -> None:
        if isinstance(exc, PipesVertexJobError) or not self.forward_termination:
            return  # the pending timeout has cancelled already
        if isinstance(exc, (DagsterExecutionInterruptedError, KeyboardInterrupt)):
            why = "the Dagster run was interrupted"
        else:
            why = f"waiting failed with {type(exc).__name__}"
        context.log.warning(f"[pipes] {why}: cancelling Vertex AI custom job {job.name}")
        self._cancel(context, job)

    def _cancel(self, context: dg.OpExecutionContext | dg.AssetExecutionContext, job: CustomJob) -> None:
        try:
            self.client.cancel_custom_job(name=job.name)
        except Exception as exc:  # the original error matters more than a failed cancel
            context.log.error(f"[pipes] could not cancel Vertex AI custom job {job.name}: {exc}")
