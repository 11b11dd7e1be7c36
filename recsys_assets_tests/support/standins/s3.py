"""A local S3: moto in server mode, reached over HTTP by the real boto3 client.

moto's server implements the S3 behaviour the model store depends on (conditional `IfNoneMatch`
puts answering 412, `x-amz-checksum-sha256` on upload, pagination, and, when switched on, IAM
signature checks against access keys it issued), and starts in milliseconds. One server serves the
session; every test gets a reset server and a fresh bucket.

Not modelled: eventual consistency (S3 is strongly consistent anyway), real latency, KMS.
Note that moto keeps its state per Python process, so every moto server in the process (other
stand-ins start their own) shares buckets and the reset; tests use one at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

BUCKET = "recsys-models"
REGION = "us-east-1"
# moto accepts any key pair until IAM checks are switched on; these are for the test's own inspection client.
ADMIN = {"aws_access_key_id": "admin-testing", "aws_secret_access_key": "admin-testing"}


@dataclass
class S3StandIn:
    """A reset moto server with one empty bucket.

    Attributes:
        endpoint_url: The server's URL, for `endpoint_url` of any S3 client.
        bucket: The bucket created for the test.
        region: The region the bucket lives in.
    """

    endpoint_url: str
    bucket: str = BUCKET
    region: str = REGION
    _issued: dict[str, str] | None = None

    def client(self, **credentials: str) -> Any:
        """A boto3 S3 client for the test's own checks (the issued key once signatures are checked)."""
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, **(credentials or self._issued or ADMIN)
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def require_signed_requests(self) -> tuple[str, str]:
        """Issue an IAM access key allowed to use the bucket, then make moto check every signature.

        Returns:
            The (access key id, secret access key) pair; any other pair is refused from now on.
        """
        import boto3

        iam = boto3.client("iam", endpoint_url=self.endpoint_url, region_name=self.region, **ADMIN)
        iam.create_user(UserName="recsys-model-store")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{self.bucket}", f"arn:aws:s3:::{self.bucket}/*"],
                }
            ],
        }
        iam.put_user_policy(UserName="recsys-model-store", PolicyName="models", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="recsys-model-store")["AccessKey"]
        _post(self.endpoint_url, "/moto-api/reset-auth", "0")
        self._issued = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        return key["AccessKeyId"], key["SecretAccessKey"]


def _post(endpoint_url: str, path: str, data: str = "") -> None:
    import requests

    requests.post(endpoint_url + path, data=data, timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """One moto S3 server for the session (stand-in for AWS S3; see the module docstring)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_standin(s3_server: str) -> Iterator[S3StandIn]:
    """An empty bucket on a freshly reset moto server.

    Stand-in for AWS S3 (or any S3-compatible store): the real boto3 client, through
    `dagster_aws.s3.S3Resource`, speaks the S3 REST protocol to moto over HTTP, so conditional puts,
    checksums and signatures are checked by a server rather than assumed by a mock.
    """
    _post(s3_server, "/moto-api/reset")
    standin = S3StandIn(endpoint_url=s3_server)
    standin.client().create_bucket(Bucket=standin.bucket)
    try:
        yield standin
    finally:
        # IAM checks are process-wide in moto: switch them off again whatever the test did.
        _post(s3_server, "/moto-api/reset-auth", "inf")
