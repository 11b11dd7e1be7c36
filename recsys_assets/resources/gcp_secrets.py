"""Secrets from Google Cloud Secret Manager, read at run time by name and version."""

from __future__ import annotations

import re
from typing import Any

import google_crc32c
import grpc
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.cloud.secretmanager_v1 import SecretManagerServiceClient
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)
from pydantic import Field, PrivateAttr

from recsys_assets.resources.secrets import (
    Secret,
    SecretAccessDeniedError,
    SecretNotFoundError,
    SecretStore,
)

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION = re.compile(r"^(latest|[0-9]+|[A-Za-z][A-Za-z0-9_-]{0,62})$")  # number, "latest" or an alias


class SecretStoreUnavailableError(ConnectionError):
    """The secret backend could not be reached (or did not answer in time). Carries names, never values."""


class SecretIntegrityError(RuntimeError):
    """A secret payload does not match the checksum the backend sent with it."""


class GcpSecretManagerStore(SecretStore):
    """Secrets read from Google Cloud Secret Manager with the run's Google credentials."""

    project: str = Field(description="Google Cloud project (id or number) that holds the secrets.")
    endpoint: str | None = Field(
        default=None,
        description="host:port of a local, plaintext Secret Manager stand-in (tests only); unset means Google's TLS "
        "endpoint with Application Default Credentials.",
    )
    timeout_seconds: float = Field(
        default=30.0, description="Overall deadline for reading one secret, retries of UNAVAILABLE included."
    )

    _client: SecretManagerServiceClient | None = PrivateAttr(default=None)

    def _get_client(self) -> SecretManagerServiceClient:
        if self._client is None:
            if self.endpoint:
                # `api_endpoint` alone would still open a TLS channel, which a local stand-in cannot answer.
                transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(self.endpoint))
                self._client = SecretManagerServiceClient(transport=transport)
            else:
                self._client = SecretManagerServiceClient()
        return self._client

    def _where(self, name: str, version: str) -> str:
        return f"secret {name!r} version {version!r} in GCP project {self.project!r}"

    def access(self, name: str, version: str = "latest") -> Secret:
        """Read one secret version and report the concrete version number it resolved to.

        Args:
            name: Secret id (not the full resource name).
            version: A version number, an alias, or "latest".

        Returns:
            The value with the resolved version, so a run can record exactly which version it used.

        Raises:
            SecretNotFoundError: The secret or version does not exist, or the version is disabled/destroyed.
            SecretAccessDeniedError: The caller lacks `secretmanager.versions.access` on the secret.
            SecretStoreUnavailableError: Secret Manager could not be reached within `timeout_seconds`.
            SecretIntegrityError: The payload does not match its CRC32C.
        """
        version = str(version)
        if not _NAME.match(name):
            raise ValueError(f"invalid secret name {name!r}: use the secret id (letters, digits, '-' and '_')")
        if not _VERSION.match(version):
            raise ValueError(f"invalid version {version!r} of secret {name!r}: use a number, an alias or 'latest'")
        where = self._where(name, version)
        request_name = f"projects/{self.project}/secrets/{name}/versions/{version}"
        retry = gretry.Retry(
            predicate=gretry.if_exception_type(gexc.ServiceUnavailable, gexc.ResourceExhausted),
            initial=0.2,
            maximum=5.0,
            timeout=self.timeout_seconds,
        )
        # The client's own exception texts carry only the resource name, but every error is re-raised
        # `from None` anyway: nothing from the response object can reach a traceback or a log.
        response: Any = None
        error: Exception | None = None
        try:
            response = self._get_client().access_secret_version(
                name=request_name, retry=retry, timeout=self.timeout_seconds
            )
        except gexc.NotFound:
            error = SecretNotFoundError(f"{where} does not exist")
        except gexc.FailedPrecondition:
            error = SecretNotFoundError(f"{where} is disabled or destroyed: enable it or pin another version")
        except gexc.PermissionDenied:
            error = SecretAccessDeniedError(
                f"access to {where} denied: grant the run's service account "
                "roles/secretmanager.secretAccessor on the secret"
            )
        except gexc.Unauthenticated:
            error = SecretAccessDeniedError(f"reading {where}: the run has no valid Google credentials")
        except (gexc.ServiceUnavailable, gexc.ResourceExhausted, gexc.DeadlineExceeded, gexc.RetryError) as exc:
            endpoint = self.endpoint or "secretmanager.googleapis.com"
            error = SecretStoreUnavailableError(
                f"Secret Manager at {endpoint} did not answer for {where} within {self.timeout_seconds:g}s "
                f"({type(exc).__name__})"
            )
        except gexc.GoogleAPICallError as exc:
            error = RuntimeError(f"reading {where} failed: {type(exc).__name__} (code {exc.code})")
        if error is not None:
            raise error from None

        payload = response.payload
        if "data_crc32c" in payload and google_crc32c.value(payload.data) != payload.data_crc32c:
            raise SecretIntegrityError(f"{where}: payload does not match its CRC32C (corrupted in transit)")
        try:
            value = payload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{where} is not UTF-8 text") from None
        # The response names the concrete version ("projects/<number>/secrets/<id>/versions/7")
        # even when "latest" or an alias was asked for.
        resolved = response.name.rsplit("/versions/", 1)[-1] if "/versions/" in response.name else version
        return Secret(name=name, version=resolved, value=value)
