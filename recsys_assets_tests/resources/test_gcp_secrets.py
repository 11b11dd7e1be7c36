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
from recsys_assets_tests.standins.secret_manager import FakeSecretManager

VALUE = "s3cr3t-value-do-not-print"


def store_for(fake: FakeSecretManager, **overrides) -> GcpSecretManagerStore:
    return GcpSecretManagerStore(project=fake.project, endpoint=fake.endpoint, **overrides)


def full_text(exc: BaseException) -> str:
    """Everything a traceback or log line could show about the exception, chained ones included."""
    return "".join(traceback.format_exception(exc)) + repr(exc)


def test_latest_resolves_to_the_concrete_version(fake_secret_manager):
    fake_secret_manager.add("api-key", "old-value")
    fake_secret_manager.add("api-key", VALUE)
    store = store_for(fake_secret_manager)

    secret = store.access("api-key")
    assert secret.value == VALUE and secret.version == "2" and secret.reference() == "api-key@2"
    assert fake_secret_manager.requests == [f"projects/{fake_secret_manager.project}/secrets/api-key/versions/latest"]

    pinned = store.access("api-key", "1")
    assert pinned.value == "old-value" and pinned.version == "1"
    fake_secret_manager.aliases["api-key"] = {"prod": 1}
    assert store.access("api-key", "prod").version == "1"


def test_latest_skips_disabled_versions_and_a_pinned_disabled_version_is_not_found(fake_secret_manager):
    fake_secret_manager.add("api-key", VALUE)
    fake_secret_manager.add("api-key", "rotated-but-disabled")
    fake_secret_manager.disabled.add(("api-key", 2))
    store = store_for(fake_secret_manager)
    assert store.access("api-key").version == "1"
    with pytest.raises(SecretNotFoundError, match=r"'api-key' version '2'.*disabled or destroyed"):
        store.access("api-key", "2")


def test_value_never_prints(fake_secret_manager):
    fake_secret_manager.add("api-key", VALUE)
    secret = store_for(fake_secret_manager).access("api-key")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr(store_for(fake_secret_manager))):
        assert VALUE not in text
    assert "api-key" in repr(secret) and "api-key@1" in str(secret)


def test_missing_secret_names_the_secret_and_project(fake_secret_manager):
    fake_secret_manager.add("other", VALUE)
    with pytest.raises(SecretNotFoundError) as caught:
        store_for(fake_secret_manager).access("api-key")
    message = str(caught.value)
    assert "'api-key'" in message and f"'{fake_secret_manager.project}'" in message
    assert VALUE not in full_text(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None

    with pytest.raises(SecretNotFoundError, match="version '9'"):
        store_for(fake_secret_manager).access("other", "9")


def test_permission_denied(fake_secret_manager):
    fake_secret_manager.add("api-key", VALUE)
    fake_secret_manager.denied.add("api-key")
    with pytest.raises(SecretAccessDeniedError, match=r"'api-key'.*secretAccessor") as caught:
        store_for(fake_secret_manager).access("api-key")
    assert VALUE not in full_text(caught.value)


def test_corrupted_payload_is_refused_without_showing_it(fake_secret_manager):
    fake_secret_manager.add("api-key", VALUE)
    fake_secret_manager.bad_checksum.add("api-key")
    with pytest.raises(SecretIntegrityError, match="CRC32C") as caught:
        store_for(fake_secret_manager).access("api-key")
    assert VALUE not in full_text(caught.value)


def test_unreachable_service_is_a_clear_error_within_the_deadline():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = GcpSecretManagerStore(project="p", endpoint=f"127.0.0.1:{port}", timeout_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(SecretStoreUnavailableError, match=f"127.0.0.1:{port}.*'api-key'"):
        store.access("api-key")
    assert time.monotonic() - started < 10


def test_malformed_names_are_refused_before_any_call(fake_secret_manager):
    with pytest.raises(ValueError, match="secret id"):
        store_for(fake_secret_manager).access("projects/p/secrets/x")
    assert fake_secret_manager.requests == []


def test_selected_by_environment(fake_secret_manager, tmp_path):
    resources = build_resources(
        {
            "RECSYS_DATA_DIR": str(tmp_path),
            "RECSYS_SECRETS": "gcp",
            "RECSYS_GCP_PROJECT": fake_secret_manager.project,
            "RECSYS_SECRETS_ENDPOINT": fake_secret_manager.endpoint,
        }
    )
    fake_secret_manager.add("api-key", VALUE)
    assert isinstance(resources["secrets"], GcpSecretManagerStore)
    assert resources["secrets"].access("api-key").value == VALUE
    with pytest.raises(ValueError, match="RECSYS_GCP_PROJECT"):
        build_resources({"RECSYS_DATA_DIR": str(tmp_path), "RECSYS_SECRETS": "gcp"})
