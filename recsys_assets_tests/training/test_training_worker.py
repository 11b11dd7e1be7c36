"""The training entrypoint tells a service error (retried) from bad data or configuration (refused)."""

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
