"""Object-store Pipes channels (context in, messages out) for launchers whose stdout is out of reach.

A Vertex AI worker's stdout only reaches Cloud Logging, so context and messages travel through a
bucket instead. Compared with the stock `dagster_aws` / `dagster_gcp` classes:

* every key sits under a configurable prefix (so a bucket lifecycle rule can expire them);
* the message params name the store and the flush interval, which lets
  `recsys_assets.pipes.worker.open_training_pipes` pick the matching writer in the container;
* the context file is deleted even when the step fails (the stock injectors skip the delete then);
* GCS is implemented here: importing anything under `dagster_gcp.pipes` imports its Dataproc
  client, which needs `google-cloud-dataproc`, a library this project does not install. These
  calls also avoid `get_bucket`, so the worker's service account needs object permissions only.
"""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Literal

from dagster import PipesContextInjector, PipesMessageReader
from dagster._core.pipes.utils import PipesBlobStoreMessageReader
from dagster_pipes import PipesBlobStoreMessageWriter, PipesContextData, PipesParams

# Extra keys in the messages params; the stock writers ignore keys they do not know.
from recsys_assets.pipes.worker import FLUSH_PARAM, STORE_PARAM

MessageStore = Literal["s3", "gcs"]
MESSAGE_STORES: tuple[str, ...] = ("s3", "gcs")
CONTEXT_FILE = "context.json"


def _prefixed(prefix: str, key: str) -> str:
    return f"{prefix.strip('/')}/{key}" if prefix.strip("/") else key


def _random_name() -> str:
    return "".join(random.choices(string.ascii_letters, k=30))


class BucketContextInjector(PipesContextInjector):
    """Writes the Pipes context to `{prefix}/{random}/context.json` and deletes it afterwards."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        put: Callable[[str, bytes], None],
        delete: Callable[[str], None],
        store: str,
    ):
        self.bucket = bucket
        self.prefix = prefix
        self._put = put
        self._delete = delete
        self._store = store

    @contextmanager
    def inject_context(self, context_data: PipesContextData) -> Iterator[PipesParams]:
        key = _prefixed(self.prefix, f"{_random_name()}/{CONTEXT_FILE}")
        self._put(key, json.dumps(context_data).encode())
        try:
            yield {"bucket": self.bucket, "key": key}
        finally:
            self._delete(key)

    def no_messages_debug_text(self) -> str:
        return (
            f"Attempted to inject context through {self._store} bucket {self.bucket}. The worker must open "
            "Pipes with recsys_assets.pipes.worker.open_training_pipes() (or a bucket context loader)."
        )


class BucketMessageReader(PipesBlobStoreMessageReader):
    """Reads the numbered message chunks `{prefix}/{random}/{n}.json` a blob-store writer uploads."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str,
        get: Callable[[str], bytes | None],
        store: str,
        interval: float,
    ):
        super().__init__(interval=interval)
        self.bucket = bucket
        self.prefix = prefix
        self._get = get
        self._store = store

    @contextmanager
    def get_params(self) -> Iterator[PipesParams]:
        yield {
            "bucket": self.bucket,
            "key_prefix": _prefixed(self.prefix, _random_name()),
            PipesBlobStoreMessageWriter.INCLUDE_STDIO_IN_MESSAGES_KEY: False,
            STORE_PARAM: self._store,
            FLUSH_PARAM: self.interval,
        }

    def messages_are_readable(self, params: PipesParams) -> bool:
        return self._get(f"{params['key_prefix']}/1.json") is not None

    def download_messages_chunk(self, index: int, params: PipesParams) -> str | None:
        chunk = self._get(f"{params['key_prefix']}/{index}.json")
        return None if chunk is None else chunk.decode("utf-8")

    def no_messages_debug_text(self) -> str:
        return (
            f"Attempted to read messages from {self._store} bucket {self.bucket}. The worker must open "
            "Pipes with recsys_assets.pipes.worker.open_training_pipes() (or a bucket message writer)."
        )


def _s3_access(client: Any, bucket: str) -> tuple[Callable, Callable, Callable]:
    from botocore.exceptions import ClientError

    def put(key: str, data: bytes) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=data)

    def get(key: str) -> bytes | None:
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError:
            return None

    def delete(key: str) -> None:
        client.delete_object(Bucket=bucket, Key=key)

    return put, get, delete


def _gcs_access(client: Any, bucket: str) -> tuple[Callable, Callable, Callable]:
    from google.api_core.exceptions import NotFound

    handle = client.bucket(bucket)  # no API call, unlike get_bucket

    def put(key: str, data: bytes) -> None:
        handle.blob(key).upload_from_string(data, content_type="application/json")

    def get(key: str) -> bytes | None:
        try:
            return handle.blob(key).download_as_bytes()
        except NotFound:
            return None

    def delete(key: str) -> None:
        with suppress(NotFound):
            handle.blob(key).delete()

    return put, get, delete


def object_store_channels(
    store: MessageStore,
    *,
    bucket: str,
    client: Any,
    prefix: str = "dagster-pipes",
    interval: float = 10.0,
) -> tuple[PipesContextInjector, PipesMessageReader]:
    """Context injector and message reader that both go through `bucket` under `prefix`.

    Args:
        store: Which object store `client` talks to: `s3` (a boto3 S3 client) or `gcs`
            (a `google.cloud.storage.Client`).
        bucket: Bucket that holds the context file and the message chunks.
        client: The storage client the orchestrator reads and writes with.
        prefix: Key prefix for every object a session writes.
        interval: Seconds between chunk uploads in the worker and between reads here.

    Returns:
        The injector and the reader to hand to a Pipes client.
    """
    if store == "s3":
        put, get, delete = _s3_access(client, bucket)
    elif store == "gcs":
        put, get, delete = _gcs_access(client, bucket)
    else:
        raise ValueError(f"message store {store!r} is not one of {', '.join(MESSAGE_STORES)}")
    injector = BucketContextInjector(bucket=bucket, prefix=prefix, put=put, delete=delete, store=store)
    reader = BucketMessageReader(bucket=bucket, prefix=prefix, get=get, store=store, interval=interval)
    return injector, reader
