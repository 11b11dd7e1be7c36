"""Byte-level I/O on local paths and object-store URIs (s3://, gs://) through pyarrow.fs.

The training entrypoint runs in other processes and containers (subprocess, Docker, Vertex AI),
so artefacts are addressed by URI and read with the same code wherever the code runs.

Object-store calls are bounded: pyarrow's GCS client retries for up to 15 minutes and waits 2 minutes
on a connection that accepts and never answers, inside C++, where no Python signal handler runs (a
SIGTERM would wait for it). Each remote call therefore runs on a daemon thread the caller waits for,
interruptibly, at most `REMOTE_CALL_TIMEOUT_SECONDS`. A `gs://` URI takes pyarrow's options as its
query: `endpoint_override=host:port`, `scheme=http`, `anonymous=true` (a local stand-in), `retry_limit_seconds`.
"""

from __future__ import annotations

import io
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import scipy.sparse as sp

from recsys_assets.domain.failures import Verdict, local_write_verdict

T = TypeVar("T")
R = TypeVar("R")


def join(base: str, *parts: str) -> str:
    """Join URI or path segments with single slashes, keeping any ?query on the base."""
    base, _, query = base.partition("?")
    joined = "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return f"{joined}?{query}" if query else joined


# How long one object-store call may take, retries included, before it counts as an outage (transient).
REMOTE_CALL_TIMEOUT_SECONDS = 120.0
# Object-store transfers go in pieces of this size, each a call of its own: the deadline bounds a
# stall, never the time a large file takes on a slow link.
REMOTE_CHUNK_BYTES = 16 * 1024 * 1024


class StorageError(OSError):
    """An artefact could not be written; the text names the URI, and `verdict` says whether a retry can help."""

    def __init__(self, errno: int | None, text: str, verdict: Verdict):
        super().__init__(errno, text)
        self.verdict = verdict

    def __str__(self) -> str:
        return str(self.strerror)


class StorageTimeout(TimeoutError):
    """An object store did not answer in time (an outage: transient)."""


def _gcs(uri: str) -> tuple[pafs.FileSystem, str]:
    """pyarrow's GCS file system for `uri`, its options from the query, retrying no longer than a call may take."""
    parts = urlsplit(uri)
    options = dict(parse_qsl(parts.query))
    unknown = set(options) - {"endpoint_override", "scheme", "anonymous", "retry_limit_seconds"}
    if unknown:
        raise ValueError(f"{uri.split('?')[0]}: unknown gs:// option(s) {', '.join(sorted(unknown))}")
    limit = float(options.get("retry_limit_seconds", REMOTE_CALL_TIMEOUT_SECONDS))
    fs = pafs.GcsFileSystem(
        anonymous=options.get("anonymous", "false").lower() == "true",
        endpoint_override=options.get("endpoint_override"),
        scheme=options.get("scheme", "https"),
        retry_time_limit=timedelta(seconds=min(limit, REMOTE_CALL_TIMEOUT_SECONDS)),
    )
    return fs, f"{parts.netloc}{parts.path}".rstrip("/")


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    if "://" not in uri:
        return pafs.LocalFileSystem(), uri
    if uri.lower().startswith("gs://"):
        return _gcs(uri)
    return pafs.FileSystem.from_uri(uri)


def _bounded(uri: str, call: Callable[[], T]) -> T:
    """`call()` (I/O at `uri`); on an object store on a daemon thread, waited for interruptibly and at most
    `REMOTE_CALL_TIMEOUT_SECONDS` (then StorageTimeout: the thread is abandoned, it holds no lock of ours)."""
    if "://" not in uri:
        return call()
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=work, name=f"storage {uri.split('?')[0]}", daemon=True).start()
    if not done.wait(REMOTE_CALL_TIMEOUT_SECONDS):
        raise StorageTimeout(f"{uri.split('?')[0]}: no answer within {REMOTE_CALL_TIMEOUT_SECONDS:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def write_bytes(uri: str, data: bytes) -> None:
    """Write `data` at `uri`; local writes go through a temporary name so readers never see half a file,
    and a failed local write leaves nothing behind and fails naming the path (permanent when a retry cannot help).
    """
    if "://" in uri:
        _write_remote(uri, data)
        return
    fs = pafs.LocalFileSystem()
    tmp = f"{uri}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        fs.create_dir(uri.rsplit("/", 1)[0], recursive=True)
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, uri)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        detail = " ".join(str(exc).split())
        raise StorageError(exc.errno, f"cannot write {uri}: {detail}", local_write_verdict(exc)) from exc


def _write_remote(uri: str, data: bytes) -> None:
    fs, path = resolve(uri)
    _bounded(uri, lambda: fs.create_dir(path.rsplit("/", 1)[0], recursive=True))
    out = _bounded(uri, lambda: fs.open_output_stream(path))
    view = memoryview(data)
    for start in range(0, len(view), REMOTE_CHUNK_BYTES):
        chunk = view[start : start + REMOTE_CHUNK_BYTES]
        _bounded(uri, lambda chunk=chunk: out.write(chunk))
    _bounded(uri, out.close)  # the upload completes here: until then the object does not exist


def _read_remote(uri: str) -> bytes:
    fs, path = resolve(uri)
    source = _bounded(uri, lambda: fs.open_input_stream(path))
    chunks = []
    while chunk := _bounded(uri, lambda: source.read(REMOTE_CHUNK_BYTES)):
        chunks.append(chunk)
    _bounded(uri, source.close)
    return b"".join(chunks)


def read_bytes(uri: str) -> bytes:
    try:
        if "://" in uri:
            return _read_remote(uri)
        with pafs.LocalFileSystem().open_input_stream(uri) as source:
            return source.read()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no artefact at {uri}") from exc


class StoredFiles(Mapping[str, bytes]):
    """Files by name, each read from its URI when it is looked up, beside files already in memory.

    What a bundle is published from: the store writes and checks one file at a time, so the largest
    file, not the whole bundle, is what the publishing process holds (the user x item history and the
    models grow with the data).
    """

    def __init__(self, uris: Mapping[str, str], contents: Mapping[str, bytes]):
        if set(uris) & set(contents):
            raise ValueError(f"files given twice: {sorted(set(uris) & set(contents))}")
        self._uris, self._contents = dict(uris), dict(contents)

    def __getitem__(self, name: str) -> bytes:
        return self._contents[name] if name in self._contents else read_bytes(self._uris[name])

    def __iter__(self) -> Iterator[str]:
        return iter([*self._uris, *self._contents])

    def __len__(self) -> int:
        return len(self._uris) + len(self._contents)


def exists(uri: str) -> bool:
    def info() -> bool:
        fs, path = resolve(uri)
        return fs.get_file_info(path).type != pafs.FileType.NotFound

    return _bounded(uri, info)


@dataclass(frozen=True)
class StoredFile:
    """A file under a listed folder: its path relative to that folder, size in bytes and last change."""

    relative: str
    size: int
    modified: datetime


def list_files(uri: str) -> list[StoredFile]:
    """Every file under the folder `uri`, recursively (none when it does not exist)."""

    def listing() -> list[StoredFile]:
        fs, path = resolve(uri)
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        base = path.rstrip("/") + "/"
        return [
            StoredFile(info.path.removeprefix(base), info.size or 0, info.mtime or datetime.fromtimestamp(0, UTC))
            for info in infos
            if info.type == pafs.FileType.File
        ]

    return _bounded(uri, listing)


def delete_tree(uri: str) -> None:
    """Remove the folder `uri` and everything under it (nothing when it does not exist)."""

    def delete() -> None:
        fs, path = resolve(uri)
        if fs.get_file_info(path).type != pafs.FileType.NotFound:
            fs.delete_dir(path)

    _bounded(uri, delete)


def child_names(uri: str) -> list[str]:
    """Names of the entries directly under the folder or prefix `uri`, sorted; [] when there is none."""
    fs, path = resolve(uri)
    infos = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(info.base_name for info in infos)


def write_json(uri: str, value: Any) -> None:
    write_bytes(uri, json.dumps(value, indent=2, sort_keys=True, default=str).encode())


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri))


def _in_parallel(work: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """`work` on every item, a thread per core, results in order; Parquet, NumPy and file I/O release the GIL.

    Daemon threads, joined interruptibly: a caller stopped by SIGTERM leaves at once instead of waiting
    for workers that wait on an object store (a ThreadPoolExecutor's workers are joined at exit).
    """
    if len(items) <= 1:
        return [work(item) for item in items]
    results: list[Any] = [None] * len(items)
    errors: list[BaseException] = []
    pending = iter(range(len(items)))
    lock = threading.Lock()

    def worker() -> None:
        while not errors:
            with lock:
                index = next(pending, None)
            if index is None:
                return
            try:
                results[index] = work(items[index])
            except BaseException as exc:  # handed to the caller's thread
                errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(os.cpu_count() or 1, len(items)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def sparse_to_bytes(matrix: sp.csr_matrix) -> bytes:
    buffer = io.BytesIO()
    sp.save_npz(buffer, matrix.tocsr(), compressed=False)
    return buffer.getvalue()


def sparse_from_bytes(data: bytes) -> sp.csr_matrix:
    return sp.csr_matrix(sp.load_npz(io.BytesIO(data)))


def read_sparse(uris: Sequence[str]) -> list[sp.csr_matrix]:
    """The matrices saved by `sparse_to_bytes` at `uris`, in order, the files read in parallel.

    A local file is loaded straight into the arrays: one copy of the data, not two (the bytes, then
    the arrays), which is half the page faults of a training set's 0.3 GiB at 10 M events.
    """

    def read(uri: str) -> sp.csr_matrix:
        if "://" in uri:
            return sparse_from_bytes(read_bytes(uri))
        try:
            return sp.csr_matrix(sp.load_npz(uri))
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"no artefact at {uri}") from exc

    return _in_parallel(read, uris)


def table_to_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def table_from_bytes(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


def write_tables(tables: Mapping[str, pa.Table]) -> None:
    """Write each table as Parquet at its URI, the files in parallel.

    Parquet encoding and file I/O release the GIL, so a thread per core writes a 100-day extract
    about twice as fast on two cores (benchmarks/README.md).
    """
    _in_parallel(lambda item: write_bytes(item[0], table_to_bytes(item[1])), list(tables.items()))


def read_tables(uris: Sequence[str]) -> list[pa.Table]:
    """The Parquet tables at `uris`, in order, the files read in parallel."""
    return _in_parallel(lambda uri: table_from_bytes(read_bytes(uri)), uris)
