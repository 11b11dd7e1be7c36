"""GcpSecretManagerStore against a fake Secret Manager reached by the real gRPC client."""

from __future__ import annotations

import socket
import time
import traceback

import pytest

from recsys_assets.resources import build_resources
from recsys_assets.resources.gcp_secrets import (
    GcpSecretManagerStore,
    SecretIntegrityError,
    SecretStoreUnavailableError,
)
from recsys_assets.resources.secrets import SecretAccessDeniedError, SecretNotFoundError
from recsys_assets_tests.support.standins.secret_manager import SecretManagerStandIn

VALUE = "s3cr3t-value-do-not-print"


def store_for(fake: SecretManagerStandIn, **overrides) -> GcpSecretManagerStore:
    return GcpSecretManagerStore(project=fake.project, endpoint=fake.endpoint, **overrides)


def full_text(exc: BaseException) -> str:
    """Everything a traceback or log line could show about the exception, chained ones included."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_latest_resolves_to_the_concrete_version(secret_manager_standin):
    secret_manager_standin.add("api-key", "old-value")
    secret_manager_standin.add("api-key", VALUE)
    store = store_for(secret_manager_standin)

    secret = store.access("api-key")
    assert secret.value == VALUE and secret.version == "2" and secret.reference() == "api-key@2"
    assert secret_manager_standin.requests == [
        f"projects/{secret_manager_standin.project}/secrets/api-key/versions/latest"
    ]

    pinned = store.access("api-key", "1")
    assert pinned.value == "old-value" and pinned.version == "1"
    secret_manager_standin.aliases["api-key"] = {"prod": 1}
    assert store.access("api-key", "prod").version == "1"


def test_latest_skips_disabled_versions_and_a_pinned_disabled_version_is_not_found(secret_manager_standin):
    secret_manager_standin.add("api-key", VALUE)
    secret_manager_standin.add("api-key", "rotated-but-disabled")
    secret_manager_standin.disabled.add(("api-key", 2))
    store = store_for(secret_manager_standin)
    assert store.access("api-key").version == "1"
    with pytest.raises(SecretNotFoundError, match=r"'api-key' version '2'.*disabled or destroyed"):
        store.access("api-key", "2")


def test_value_never_prints(secret_manager_standin):
    secret_manager_standin.add("api-key", VALUE)
    secret = store_for(secret_manager_standin).access("api-key")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr(store_for(secret_manager_standin))):
        assert VALUE not in text
    assert "api-key" in repr(secret) and "api-key@1" in str(secret)


def test_missing_secret_names_the_secret_and_project(secret_manager_standin):
    secret_manager_standin.add("other", VALUE)
    with pytest.raises(SecretNotFoundError) as caught:
        store_for(secret_manager_standin).access("api-key")
    message = str(caught.value)
    assert "'api-key'" in message and f"'{secret_manager_standin.project}'" in message
    assert VALUE not in full_text(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None

    with pytest.raises(SecretNotFoundError, match="version '9'"):
        store_for(secret_manager_standin).access("other", "9")


def test_permission_denied(secret_manager_standin):
    secret_manager_standin.add("api-key", VALUE)
    secret_manager_standin.denied.add("api-key")
    with pytest.raises(SecretAccessDeniedError, match=r"'api-key'.*secretAccessor") as caught:
        store_for(secret_manager_standin).access("api-key")
    assert VALUE not in full_text(caught.value)


def test_corrupted_payload_is_refused_without_showing_it(secret_manager_standin):
    secret_manager_standin.add("api-key", VALUE)
    secret_manager_standin.bad_checksum.add("api-key")
    with pytest.raises(SecretIntegrityError, match="CRC32C") as caught:
        store_for(secret_manager_standin).access("api-key")
    assert VALUE not in full_text(caught.value)


@pytest.mark.slow
def test_unreachable_service_is_a_clear_error_within_the_deadline():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = GcpSecretManagerStore(project="p", endpoint=f"127.0.0.1:{port}", timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(SecretStoreUnavailableError, match=f"127.0.0.1:{port}.*'api-key'"):
        store.access("api-key")
    assert time.monotonic() - started < 10


def test_malformed_names_are_refused_before_any_call(secret_manager_standin):
    with pytest.raises(ValueError, match="secret id"):
        store_for(secret_manager_standin).access("projects/p/secrets/x")
    assert secret_manager_standin.requests == []


def test_selected_by_environment(secret_manager_standin, tmp_path):
    resources = build_resources(
        {
            "RECSYS_DATA_DIR": str(tmp_path),
            "RECSYS_SECRETS": "gcp",
            "RECSYS_GCP_PROJECT": secret_manager_standin.project,
            "RECSYS_SECRETS_ENDPOINT": secret_manager_standin.endpoint,
        }
    )
    secret_manager_standin.add("api-key", VALUE)
    assert isinstance(resources["secrets"], GcpSecretManagerStore)
    assert resources["secrets"].access("api-key").value == VALUE
    with pytest.raises(ValueError, match="RECSYS_GCP_PROJECT"):
        build_resources({"RECSYS_DATA_DIR": str(tmp_path), "RECSYS_SECRETS": "gcp"})


def test_a_value_stored_with_a_trailing_newline_is_read_stripped(secret_manager_standin):
    # `echo $TOKEN | gcloud secrets versions add --data-file=-` stores the newline echo adds.
    secret_manager_standin.add("github-token", VALUE + "\n")
    assert store_for(secret_manager_standin).access("github-token").value == VALUE
