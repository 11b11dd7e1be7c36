"""A local Google Cloud Secret Manager that answers `AccessSecretVersion` over plaintext gRPC.

No Secret Manager emulator exists, so this is a gRPC server built from the `secretmanager_v1`
request and response types, reached by the real `SecretManagerServiceClient` through an insecure
channel (`GcpSecretManagerStore(endpoint=...)`). It behaves like the service where the store relies
on it: versions are numbered from 1, `latest` and aliases resolve to a number, the response name
carries the project *number* (as Google's does), payloads carry a CRC32C, unknown secrets are
NOT_FOUND, denied ones PERMISSION_DENIED, disabled versions FAILED_PRECONDITION.

Not modelled: IAM, secret creation through the API, replication, other RPCs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import google_crc32c
import grpc
import pytest
from google.cloud.secretmanager_v1.types import (
    AccessSecretVersionRequest,
    AccessSecretVersionResponse,
)

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
PROJECT = "recsys-test"
PROJECT_NUMBER = "123456789012"
_REQUEST_NAME = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")


@dataclass
class SecretManagerStandIn:
    """The service's state, which tests arrange directly, and the requests it received.

    Attributes:
        endpoint: host:port to give `GcpSecretManagerStore.endpoint`.
        project: The project id the secrets live in.
        versions: secret id -> payload of each version, version 1 first.
        aliases: secret id -> alias -> version number.
        denied: Secret ids every read of which is PERMISSION_DENIED.
        disabled: (secret id, version number) pairs that are FAILED_PRECONDITION.
        bad_checksum: Secret ids whose payload is sent with a wrong CRC32C.
        requests: Resource names of every AccessSecretVersion call, in order.
    """

    endpoint: str = ""
    project: str = PROJECT
    versions: dict[str, list[bytes]] = field(default_factory=dict)
    aliases: dict[str, dict[str, int]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    disabled: set[tuple[str, int]] = field(default_factory=set)
    bad_checksum: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)

    def add(self, name: str, value: str | bytes) -> str:
        """Add a new version of `name` (creating the secret) and return its version number."""
        data = value.encode() if isinstance(value, str) else value
        self.versions.setdefault(name, []).append(data)
        return str(len(self.versions[name]))

    def access(self, request: AccessSecretVersionRequest, context: grpc.ServicerContext) -> AccessSecretVersionResponse:
        self.requests.append(request.name)
        match = _REQUEST_NAME.match(request.name)
        if not match:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed name {request.name!r}")
        project, name, version = match.groups()
        if project not in (self.project, PROJECT_NUMBER) or name not in self.versions:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"Secret [projects/{PROJECT_NUMBER}/secrets/{name}] not found or has no versions.",
            )
        if name in self.denied:
            context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"Permission 'secretmanager.versions.access' denied for resource '{request.name}' (or it may not exist).",
            )
        payloads = self.versions[name]
        if version == "latest":
            number = max(n for n in range(1, len(payloads) + 1) if (name, n) not in self.disabled)
        elif version.isdigit():
            number = int(version)
        else:
            number = self.aliases.get(name, {}).get(version, 0)
        resolved = f"projects/{PROJECT_NUMBER}/secrets/{name}/versions/{number}"
        if not 1 <= number <= len(payloads):
            context.abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{resolved}] not found.")
        if (name, number) in self.disabled:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"Secret Version [{resolved}] is in DISABLED state.")
        data = payloads[number - 1]
        crc = google_crc32c.value(data) ^ (1 if name in self.bad_checksum else 0)
        return AccessSecretVersionResponse(name=resolved, payload={"data": data, "data_crc32c": crc})


@pytest.fixture
def secret_manager_standin() -> Iterator[SecretManagerStandIn]:
    """A fresh fake Secret Manager on 127.0.0.1 (a free port), stopped after the test.

    Stand-in for Google Cloud Secret Manager, which has no emulator: the real client library talks
    real gRPC to it, so request names, status codes and payload checksums cross the wire as in
    production.
    """
    fake = SecretManagerStandIn()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handler = grpc.unary_unary_rpc_method_handler(
        fake.access,
        request_deserializer=AccessSecretVersionRequest.deserialize,
        response_serializer=AccessSecretVersionResponse.serialize,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"AccessSecretVersion": handler}),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    fake.endpoint = f"127.0.0.1:{port}"
    try:
        yield fake
    finally:
        server.stop(grace=None)
