"""Model store on S3 (or an S3-compatible store), with credentials read from the secrets resource."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from recsys_assets.domain.failures import classify
from recsys_assets.domain.redaction import scrub
from recsys_assets.resources.model_store import ModelStore, ModelStoreError
from recsys_assets.resources.secrets import Secret, SecretStore


def _status(error: ClientError) -> tuple[str, int]:
    return error.response.get("Error", {}).get("Code", ""), error.response.get("ResponseMetadata", {}).get(
        "HTTPStatusCode", 0
    )


class S3ModelStore(ModelStore):
    """Model store in an S3 bucket (AWS or S3-compatible), credentials from the secrets resource."""

    secrets: SecretStore = Field(description="Where the access key pair is read from at run time.")
    bucket: str = Field(description="Bucket that holds <prefix>/models/<model_name>/<version>/.")
    prefix: str = Field(default="", description="Key prefix inside the bucket ('' for the bucket root).")
    region_name: str | None = Field(default=None, description="AWS region of the bucket.")
    endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, R2, a local stand-in); unset for AWS."
    )
    access_key_secret: str | None = Field(
        default="aws-access-key-id",
        description="Secret holding the access key id; unset (with secret_key_secret) to use the default AWS "
        "credential chain (instance role, environment, profile).",
    )
    access_key_secret_version: str = Field(default="latest", description="Version of access_key_secret.")
    secret_key_secret: str | None = Field(
        default="aws-secret-access-key", description="Secret holding the secret access key."
    )
    secret_key_secret_version: str = Field(default="latest", description="Version of secret_key_secret.")
    checksum_sha256: bool = Field(
        default=True,
        description="Send x-amz-checksum-sha256 with every upload so the store rejects corrupted bodies; turn off "
        "for S3-compatible stores that do not support it (uploads are still read back and compared).",
    )
    max_attempts: int = Field(default=5, description="Attempts per S3 call (botocore standard retries).")

    _client: Any = PrivateAttr(default=None)
    _used_secrets: list[Secret] = PrivateAttr(default_factory=list)

    def _credentials(self) -> tuple[str | None, str | None]:
        if bool(self.access_key_secret) != bool(self.secret_key_secret):
            raise ValueError("set both access_key_secret and secret_key_secret, or neither for the default chain")
        if not self.access_key_secret or not self.secret_key_secret:
            return None, None
        key_id = self.secrets.access(self.access_key_secret, self.access_key_secret_version)
        secret_key = self.secrets.access(self.secret_key_secret, self.secret_key_secret_version)
        self._used_secrets = [key_id, secret_key]
        return key_id.value, secret_key.value

    def _s3(self) -> Any:
        # Built on first use, inside the run, so the key pair lives only in this process's memory and
        # never in resource config, which Dagster stores with the run.
        if self._client is None:
            key_id, secret_key = self._credentials()
            self._client = S3Resource(
                region_name=self.region_name,
                endpoint_url=self.endpoint_url,
                max_attempts=self.max_attempts,
                aws_access_key_id=key_id,
                aws_secret_access_key=secret_key,
            ).get_client()
        return self._client

    def secret_references(self) -> list[str]:
        """The secrets (name@resolved version) the credentials came from; empty for the default chain.

        Safe to record in metadata: it holds names and versions, never values. Reads the
        credentials if no call has yet.
        """
        self._s3()
        return [secret.reference() for secret in self._used_secrets]

    def _key(self, key: str) -> str:
        prefix = self.prefix.strip("/")
        return f"{prefix}/{key}" if prefix else key

    @contextmanager
    def _errors(self, action: str, key: str) -> Iterator[None]:
        """Turn botocore errors into a ModelStoreError that names the object and cannot carry a credential."""
        try:
            yield
        except ClientError as exc:
            code, status = _status(exc)
            detail = f"{code or 'error'} (HTTP {status}) {exc.response.get('Error', {}).get('Message', '')}"
            verdict = classify(exc)
        except BotoCoreError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            verdict = classify(exc)
        else:
            return
        text = f"S3 {action} {self.uri(key)} failed: {detail}".strip()
        # `from None`: the botocore exception keeps the raw response, which for signature errors
        # echoes the access key id and the string that was signed.
        raise ModelStoreError.classified(scrub(text), verdict) from None

    def _checksum(self, data: bytes) -> dict[str, str]:
        if not self.checksum_sha256:
            return {}
        return {"ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode()}

    def put_object(self, key: str, data: bytes) -> None:
        with self._errors("PutObject", key):
            self._s3().put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **self._checksum(data))

    def put_object_if_absent(self, key: str, data: bytes) -> bool:
        extra = self._checksum(data)
        with self._errors("conditional PutObject", key):
            try:
                self._s3().put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*", **extra)
            except ClientError as exc:
                code, status = _status(exc)
                if status == 412 or code == "PreconditionFailed":
                    return False
                # 409: a concurrent conditional write to the key raced this one. If the key now exists
                # we lost; if not, the other writer failed too and the caller's retry decides.
                if status == 409 and self.get_object(key) is not None:
                    return False
                raise
        return True

    def get_object(self, key: str) -> bytes | None:
        with self._errors("GetObject", key):
            try:
                response = self._s3().get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                code, status = _status(exc)
                if status == 404 or code in ("NoSuchKey", "404"):
                    return None
                raise
            return response["Body"].read()

    def delete_object(self, key: str) -> None:
        with self._errors("DeleteObject", key):
            self._s3().delete_object(Bucket=self.bucket, Key=self._key(key))

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(self.object_sizes(prefix))

    def object_sizes(self, prefix: str) -> dict[str, int]:
        sizes: dict[str, int] = {}
        strip = len(self._key(""))
        with self._errors("ListObjectsV2", prefix):
            paginator = self._s3().get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                sizes.update((item["Key"][strip:], item["Size"]) for item in page.get("Contents", []))
        return sizes

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"
