"""The training entrypoint tells a service error (retried) from bad data or configuration (refused)."""

import subprocess
import sys

import botocore.exceptions
import pytest

from recsys_assets.training.worker import is_service_error


def _raised_from(error: Exception, cause: Exception) -> Exception:
    try:
        raise error from cause
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    ("error", "service"),
    [
        (ValueError("the global_cut protocol leaves 0 fit pairs"), False),
        (KeyError("family"), False),
        (MemoryError(), False),
        (ConnectionError("reset by peer"), True),
        (TimeoutError(), True),
        (FileNotFoundError("no artefact at s3://bucket/x"), True),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (_raised_from(ValueError("could not read the training set"), ConnectionError("reset")), True),
        (_raised_from(RuntimeError("wrapped"), ValueError("bad data")), False),
    ],
)
def test_only_service_errors_are_left_to_the_retry_policy(error, service):
    assert is_service_error(error) is service


@pytest.mark.slow
def test_the_training_child_starts_without_importing_dagster():
    # Every retrain starts the child several times (split, baselines, training, evaluation): Dagster's
    # import (about 0.9 s) in each would be most of the run's fixed cost on small data.
    probe = "import sys, recsys_assets.training.worker; print('dagster' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "False"
