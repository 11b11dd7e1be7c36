"""Launchers that run the training entrypoint outside the orchestrator and report back through Pipes."""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from typing import Any, Mapping

import dagster as dg

TRAINING_COMMAND = ["python", "-m", "recsys_assets.train"]

# implicit's ALS is multithreaded itself; a multithreaded BLAS underneath it makes it much slower.
TRAINING_ENV = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


class TrainingLauncher(dg.ConfigurableResource, ABC):
    """Runs `python -m recsys_assets.train` somewhere and streams its logs and metadata back via Pipes."""

    @property
    def image(self) -> str | None:
        """Container image the training ran on, recorded in the bundle manifest (None for local runs)."""
        return None

    @abstractmethod
    def launch(
        self, context: dg.AssetExecutionContext, extras: Mapping[str, Any]
    ) -> dg.PipesClientCompletedInvocation:
        """Run the training entrypoint with `extras` as its Pipes extras and wait for it."""


class SubprocessTrainingLauncher(TrainingLauncher):
    """Trains in a local child process (the embedded default)."""

    def launch(
        self, context: dg.AssetExecutionContext, extras: Mapping[str, Any]
    ) -> dg.PipesClientCompletedInvocation:
        return dg.PipesSubprocessClient(env=TRAINING_ENV).run(
            command=[sys.executable, *TRAINING_COMMAND[1:]], context=context, extras=dict(extras)
        )
