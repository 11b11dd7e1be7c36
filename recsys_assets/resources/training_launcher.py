"""Launchers that run the training entrypoint outside the orchestrator and report back through Pipes."""

from __future__ import annotations

import re
import signal
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import dagster as dg
from dagster import PipesTempFileContextInjector, PipesTempFileMessageReader
from dagster._core.errors import DagsterPipesExecutionError
from pydantic import AfterValidator, Field, field_validator, model_validator

from recsys_assets.pipes.warm_python import TRAINING_ENV, prestart, run_module
from recsys_assets.pipes.worker import TRAINING_REFUSED
from recsys_assets.resources.image_ref import require_pinned_image
from recsys_assets.settings import process_environment

if TYPE_CHECKING:
    # Imported lazily at run time: the Vertex AI client takes over half a second to import.
    from recsys_assets.pipes.vertex import PipesVertexCustomJobClient, VertexJobSpec

TRAINING_MODULE = "recsys_assets.train"
TRAINING_COMMAND = ["python", "-m", TRAINING_MODULE]


class TrainingLauncher(dg.ConfigurableResource, ABC):
    """Runs `python -m recsys_assets.train` somewhere and streams its logs and metadata back via Pipes."""

    @property
    def image(self) -> str | None:
        """Container image the training ran on, recorded in the bundle manifest (None for local runs)."""
        return None

    @abstractmethod
    def launch(self, context: dg.AssetExecutionContext, extras: Mapping[str, Any]) -> dg.PipesClientCompletedInvocation:
        """Run the training entrypoint with `extras` as its Pipes extras and wait for it."""

    def prepare(self) -> None:
        """Get ready to launch soon, without waiting (called as a run that trains sets up its resources)."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.prepare()


def refusal(invocation: dg.PipesClientCompletedInvocation) -> str | None:
    """Why the launched step refused its data or configuration (`TRAINING_REFUSED`), or None.

    A refusal is deterministic: the step fails without `SERVICE_RETRY_POLICY` retrying it.
    """
    reasons = [
        message[TRAINING_REFUSED]
        for message in invocation.get_custom_messages()
        if isinstance(message, dict) and TRAINING_REFUSED in message
    ]
    return str(reasons[0]) if reasons else None


class SubprocessTrainingLauncher(TrainingLauncher):
    """Trains in a local child process (the embedded default), forked warm with the libraries imported."""

    termination_timeout_seconds: float = Field(
        default=20.0, gt=0, description="How long an interrupted step's child may take to stop before it is killed."
    )

    def prepare(self) -> None:
        # The starter's imports overlap whatever runs before the first child.
        prestart()

    def launch(self, context: dg.AssetExecutionContext, extras: Mapping[str, Any]) -> dg.PipesClientCompletedInvocation:
        # What `PipesSubprocessClient.run` does, with the child forked warm (recsys_assets.pipes.warm_python)
        # instead of a fresh interpreter importing the libraries again: about 1.3 s a step.
        with dg.open_pipes_session(
            context=context,
            context_injector=PipesTempFileContextInjector(),
            message_reader=PipesTempFileMessageReader(),
            extras=dict(extras),
        ) as session:
            env = {**process_environment(), **TRAINING_ENV, **session.get_bootstrap_env_vars()}
            with run_module(TRAINING_MODULE, [], env) as process:
                try:
                    status = process.wait()
                except dg.DagsterExecutionInterruptedError:
                    context.log.info("[pipes] execution interrupted, sending SIGINT to the training child")
                    process.send_signal(signal.SIGINT)
                    process.wait(timeout=self.termination_timeout_seconds)
                    raise
            if status != 0:
                raise DagsterPipesExecutionError(f"External execution process failed with code {status}")
        return dg.PipesClientCompletedInvocation(session)


# A container spec's environment is readable by anyone who can inspect the job (holders of
# aiplatform.customJobs.get, `docker inspect`), so credentials come from the machine's identity or
# the secret store, never from these variables.
_SECRET_LOOKING = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|ACCESS_KEY|CREDENTIAL|API_KEY", re.IGNORECASE)


def no_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """`env` unchanged, or a refusal naming every variable that looks like a credential."""
    suspicious = sorted(name for name in env if _SECRET_LOOKING.search(name))
    if suspicious:
        raise ValueError(
            f"environment variables {', '.join(suspicious)} look like credentials; a container spec is "
            "readable by anyone who can inspect the job, so give the worker an identity (service "
            "account, workload identity) or read the value from the secret store instead"
        )
    return dict(env)


# Field types that validate themselves, so every launcher declares the rule once by using the type.
PinnedImage = Annotated[str, AfterValidator(require_pinned_image)]
PlainEnv = Annotated[dict[str, str], AfterValidator(no_secrets)]


class DockerTrainingLauncher(TrainingLauncher):
    """Trains in a container of the pinned project image on the local Docker engine."""

    image_uri: PinnedImage = Field(description="Pinned project image (commit-hash tag or digest).")
    network: str | None = Field(
        default=None, description="Docker network to attach, e.g. one that reaches an object store."
    )
    artifact_root: str | None = Field(
        default=None,
        description="Local artefact folder, mounted at the same path so the artefact URIs in the extras resolve inside the container.",
    )
    volumes: list[str] = Field(
        default_factory=list, description="Extra mounts in Docker's 'host:container[:mode]' form."
    )
    user: str | None = Field(
        default=None, description="uid:gid to run as, so files written to a mounted folder belong to the host user."
    )
    env: PlainEnv = Field(default_factory=dict, description="Extra plain (non-secret) environment variables.")

    @property
    def image(self) -> str | None:
        return self.image_uri

    def container_env(self) -> dict[str, str]:
        """Variables the container gets besides the Pipes bootstrap ones."""
        return {**TRAINING_ENV, **self.env}

    def container_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `docker.containers.create` besides image, command and environment."""
        kwargs: dict[str, Any] = {}
        mounts = [f"{self.artifact_root}:{self.artifact_root}:rw"] if self.artifact_root else []
        if mounts or self.volumes:
            kwargs["volumes"] = [*mounts, *self.volumes]
        if self.network:
            kwargs["network"] = self.network
        if self.user:
            kwargs["user"] = self.user
        return kwargs

    def launch(self, context: dg.AssetExecutionContext, extras: Mapping[str, Any]) -> dg.PipesClientCompletedInvocation:
        from dagster_docker import PipesDockerClient

        return PipesDockerClient(env=self.container_env()).run(
            context=context,
            image=self.image_uri,
            command=list(TRAINING_COMMAND),
            extras=dict(extras),
            container_kwargs=self.container_kwargs(),
        )


class VertexTrainingLauncher(TrainingLauncher):
    """Trains as a Vertex AI custom job on the pinned project image, with Pipes over a bucket."""

    project: str = Field(description="Google Cloud project that runs the job.")
    location: str = Field(description="Vertex AI region, e.g. europe-west1.")
    image_uri: PinnedImage = Field(description="Pinned project image in Artifact Registry (commit-hash tag or digest).")
    machine_type: str = Field(default="n1-standard-8", description="Machine type of the training replica.")
    accelerator_type: str | None = Field(
        default=None, description="aiplatform_v1.AcceleratorType name, e.g. NVIDIA_TESLA_T4."
    )
    accelerator_count: int = Field(default=0, ge=0)
    replica_count: int = Field(
        default=1,
        ge=1,
        le=1,
        description="implicit's ALS trains on one machine; more replicas would train copies that race on output_uri.",
    )
    service_account: str | None = Field(default=None, description="Service account the job runs as.")
    network: str | None = Field(
        default=None, description="VPC network to peer: projects/{number}/global/networks/{name}."
    )
    persistent_resource_id: str | None = Field(default=None, description="Run on this persistent resource.")
    base_output_directory: str | None = Field(
        default=None, description="gs:// prefix exposed to the job as AIP_MODEL_DIR."
    )
    max_run_seconds: int | None = Field(default=None, description="Vertex stops the job after running this long.")
    pending_timeout_seconds: float = Field(
        default=1800.0, gt=0, description="Cancel and fail if still queued after this."
    )
    poll_interval_seconds: float = Field(default=10.0, gt=0, description="First wait between status polls.")
    max_poll_interval_seconds: float = Field(default=60.0, gt=0, description="Longest wait between status polls.")
    messages_store: str = Field(
        default="gcs", description="Object store that carries Pipes context and messages: gcs or s3."
    )
    messages_bucket: str = Field(description="Bucket for Pipes context and messages.")
    messages_prefix: str = Field(default="dagster-pipes", description="Key prefix of every Pipes object.")
    messages_interval_seconds: float = Field(
        default=10.0, gt=0, description="Upload/read interval of Pipes message chunks."
    )
    api_endpoint: str | None = Field(
        default=None, description="Vertex AI endpoint override (default: the regional endpoint)."
    )
    api_insecure: bool = Field(default=False, description="Plain-text gRPC to api_endpoint: local stand-ins only.")
    storage_endpoint_url: str | None = Field(
        default=None,
        description="Object-store endpoint for stand-ins; also given to the worker (AWS_ENDPOINT_URL or STORAGE_EMULATOR_HOST).",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra job labels; the Dagster run labels are added."
    )
    worker_env: PlainEnv = Field(default_factory=dict, description="Extra plain (non-secret) environment variables.")

    @field_validator("messages_store")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value not in ("gcs", "s3"):
            raise ValueError(f"messages_store {value!r} is not one of gcs, s3")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VertexTrainingLauncher:
        # Fail when the resource is built, not an hour into a run when the job is submitted.
        self.job_spec(display_name="check")
        if self.max_poll_interval_seconds < self.poll_interval_seconds:
            raise ValueError("max_poll_interval_seconds must be at least poll_interval_seconds")
        return self

    @property
    def image(self) -> str | None:
        return self.image_uri

    def worker_environment(self) -> dict[str, str]:
        """Variables the training container gets besides the Pipes bootstrap ones."""
        endpoint: dict[str, str] = {}
        if self.storage_endpoint_url:
            name = "AWS_ENDPOINT_URL" if self.messages_store == "s3" else "STORAGE_EMULATOR_HOST"
            endpoint[name] = self.storage_endpoint_url
        return {**TRAINING_ENV, **endpoint, **self.worker_env}

    def job_spec(self, display_name: str) -> VertexJobSpec:
        """The custom job to submit, before Pipes variables and run labels are added."""
        from recsys_assets.pipes.vertex import VertexJobSpec

        return VertexJobSpec(
            image_uri=self.image_uri,
            command=list(TRAINING_COMMAND),
            env=self.worker_environment(),
            display_name=display_name,
            machine_type=self.machine_type,
            accelerator_type=self.accelerator_type,
            accelerator_count=self.accelerator_count,
            replica_count=self.replica_count,
            service_account=self.service_account,
            network=self.network,
            labels=self.labels,
            persistent_resource_id=self.persistent_resource_id,
            base_output_directory=self.base_output_directory,
            max_run_seconds=self.max_run_seconds,
        )

    def _storage_client(self) -> Any:
        if self.messages_store == "s3":
            import boto3

            return boto3.client("s3", endpoint_url=self.storage_endpoint_url)
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        if self.storage_endpoint_url:
            return storage.Client(
                project=self.project,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.storage_endpoint_url},
            )
        return storage.Client(project=self.project)

    def pipes_client(self) -> PipesVertexCustomJobClient:
        """The Pipes client `launch` runs, wired to the configured endpoints and bucket."""
        from google.cloud.aiplatform_v1 import JobServiceClient
        from google.cloud.aiplatform_v1.services.job_service.transports import (
            JobServiceGrpcTransport,
        )

        from recsys_assets.pipes.channels import object_store_channels
        from recsys_assets.pipes.vertex import PipesVertexCustomJobClient

        injector, reader = object_store_channels(
            self.messages_store,  # type: ignore[arg-type]
            bucket=self.messages_bucket,
            client=self._storage_client(),
            prefix=self.messages_prefix,
            interval=self.messages_interval_seconds,
        )
        job_service = None
        if self.api_insecure:
            if not self.api_endpoint:
                raise ValueError("api_insecure needs api_endpoint (host:port of the stand-in)")
            import grpc

            job_service = JobServiceClient(
                transport=JobServiceGrpcTransport(channel=grpc.insecure_channel(self.api_endpoint))
            )
        return PipesVertexCustomJobClient(
            project=self.project,
            location=self.location,
            context_injector=injector,
            message_reader=reader,
            client=job_service,
            api_endpoint=self.api_endpoint,
            poll_interval=self.poll_interval_seconds,
            max_poll_interval=self.max_poll_interval_seconds,
            pending_timeout=self.pending_timeout_seconds,
        )

    def launch(self, context: dg.AssetExecutionContext, extras: Mapping[str, Any]) -> dg.PipesClientCompletedInvocation:
        partition = f"-{context.partition_key}" if context.has_partition_key else ""
        display_name = f"recsys-train{partition}-{context.run.run_id[:8]}"
        return self.pipes_client().run(context=context, job=self.job_spec(display_name), extras=extras)
