"""The worker side of the launchers: open a Pipes session with whatever channel the launcher chose.

`open_dagster_pipes()` on its own only reads context from env/files and writes messages to files or
stdio, which is right for a subprocess or a Docker container but not for a Vertex AI job, whose
stdout never reaches the orchestrator. The launchers that use a bucket mark their message params
with the store (see `recsys_assets.pipes.channels`), so this one call works under every launcher.
Only `dagster_pipes` is imported eagerly: this runs at the start of every training container.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

from dagster_pipes import (
    PipesContext,
    PipesContextLoader,
    PipesEnvVarParamsLoader,
    PipesMessageWriter,
    open_dagster_pipes,
)

# Keys the bucket-based readers of recsys_assets.pipes.channels add to the messages params.
STORE_PARAM = "recsys_store"
FLUSH_PARAM = "recsys_flush_seconds"
# Fallback for a launcher that uses the stock dagster_aws/dagster_gcp readers (no store in the params).
STORE_ENV = "RECSYS_PIPES_STORE"
# Key of the custom message a worker sends when the data or configuration makes training impossible:
# the orchestrator then fails the step without retrying it (see recsys_assets.train).
TRAINING_REFUSED = "recsys_training_refused"
# Set by the subprocess launcher: the orchestrator process this worker must not outlive.
ORCHESTRATOR_PID_ENV = "RECSYS_ORCHESTRATOR_PID"
_PR_SET_PDEATHSIG = 1


def stop_with_orchestrator() -> None:
    """Die with the orchestrator that launched this process, when it said so in `ORCHESTRATOR_PID_ENV`.

    A killed run worker cannot forward a termination, and a training that outlives it keeps
    writing into the run's folders. Elsewhere (containers, Vertex AI) the launcher cancels the job
    instead; a child of the warm starter (`recsys_assets.pipes.warm_python`) dies with the starter,
    which dies with the orchestrator.
    """
    from recsys_assets.settings import environment_variable

    expected = environment_variable(ORCHESTRATOR_PID_ENV)
    if expected:
        die_with_parent(int(expected))


def die_with_parent(expected: int) -> None:
    """Have Linux kill this process when its parent dies (the parent-death signal); exit now if the parent
    is no longer `expected` (it died before the signal was set). A no-op elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != expected:
        os._exit(1)  # the parent is already gone


def _channel(
    store: str, context_params: dict[str, Any], interval: float
) -> tuple[PipesContextLoader | None, PipesMessageWriter]:
    from_bucket = "bucket" in context_params and "key" in context_params
    if store == "s3":
        import boto3
        from dagster_pipes import PipesS3ContextLoader, PipesS3MessageWriter

        # boto3 reads AWS_ENDPOINT_URL and the region from the environment, so a stand-in needs no code here.
        s3 = boto3.client("s3")
        return (PipesS3ContextLoader(s3) if from_bucket else None), PipesS3MessageWriter(s3, interval=interval)
    if store == "gcs":
        from dagster_pipes import PipesGCSContextLoader, PipesGCSMessageWriter
        from google.cloud import storage

        gcs = storage.Client()
        return (PipesGCSContextLoader(gcs) if from_bucket else None), PipesGCSMessageWriter(gcs, interval=interval)
    raise ValueError(f"Pipes message store {store!r} is not one of s3, gcs")


def open_training_pipes() -> PipesContext:
    """`open_dagster_pipes()` with the context loader and message writer the launcher asked for.

    Returns:
        The Pipes context; use it as `with open_training_pipes() as pipes:`. Outside a Pipes launch it
        is Dagster's no-op stand-in, exactly like `open_dagster_pipes()`.
    """
    stop_with_orchestrator()
    params = PipesEnvVarParamsLoader()
    if not params.is_dagster_pipes_process():
        return open_dagster_pipes()
    messages = params.load_messages_params()
    from recsys_assets.settings import environment_variable

    store = messages.get(STORE_PARAM) or environment_variable(STORE_ENV)
    if not store:
        return open_dagster_pipes(params_loader=params)
    context_loader, writer = _channel(
        str(store), dict(params.load_context_params()), float(messages.get(FLUSH_PARAM, 10.0))
    )
    return open_dagster_pipes(params_loader=params, context_loader=context_loader, message_writer=writer)
