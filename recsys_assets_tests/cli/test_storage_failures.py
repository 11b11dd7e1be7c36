"""Storage that cannot work fails at once naming where; an object store that never answers fails in bounded time.

The unreachable `gs://` store is a local port that accepts connections and never answers (and one where
nothing listens), reached by pyarrow's real GCS client through the URI's `endpoint_override`.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from recsys_assets.assets import ASSETS
from recsys_assets.domain import storage
from recsys_assets.domain.failures import classify
from recsys_assets.resources import build_resources
from recsys_assets_tests.support.environment import REPO_ROOT, local_env, local_resources, seed

PARTITION = "2026-01-05"


def extract(resources: dict) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            ASSETS,
            selection=["interactions"],
            partition_key=PARTITION,
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )


@pytest.mark.slow
def test_an_artefact_folder_that_cannot_exist_fails_the_step_at_once_naming_it(tmp_path):
    resources = local_resources(tmp_path, RECSYS_ARTIFACTS_URI="/proc/recsys-artifacts")
    seed(resources)
    result = extract(resources)
    assert not result.success
    events = result.all_events
    assert [e for e in events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY] == []
    failure = next(e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    description = failure.step_failure_data.user_failure_data.description
    assert "cannot write /proc/recsys-artifacts/interactions/" in description and "\n" not in description


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung load balancer)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    server.close()


def gcs_uri(port: int) -> str:
    return f"gs://recsys-artifacts/root?endpoint_override=127.0.0.1:{port}&scheme=http&anonymous=true"


@pytest.mark.slow
def test_an_object_store_that_never_answers_fails_in_bounded_time_as_an_outage(silent_port, monkeypatch):
    monkeypatch.setattr(storage, "REMOTE_CALL_TIMEOUT_SECONDS", 2.0)
    started = time.monotonic()
    with pytest.raises(
        storage.StorageTimeout, match=re.escape("gs://recsys-artifacts/root/x.json: no answer within 2 s")
    ) as err:
        storage.read_bytes(storage.join(gcs_uri(silent_port), "x.json"))
    assert time.monotonic() - started < 10 and classify(err.value) == "transient"


@pytest.mark.slow
def test_an_object_store_where_nothing_listens_fails_within_its_retry_limit():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    with pytest.raises(OSError) as err:
        storage.write_bytes(storage.join(gcs_uri(port) + "&retry_limit_seconds=1", "x.json"), b"{}")
    assert time.monotonic() - started < 30 and classify(err.value) == "transient"


@pytest.mark.slow
def test_artefacts_round_trip_through_a_gcs_stand_in_in_bounded_pieces(vertex_messages_gcs, monkeypatch):
    # The GCS stand-in (gcp-storage-emulator, the one the Vertex tests use) speaks GCS's JSON API to
    # pyarrow's real client; pieces of 1 kB so a file takes several bounded calls.
    monkeypatch.setattr(storage, "REMOTE_CHUNK_BYTES", 1000)
    host = vertex_messages_gcs.endpoint_url.removeprefix("http://")
    root = f"gs://{vertex_messages_gcs.bucket}/artifacts?endpoint_override={host}&scheme=http&anonymous=true"
    data = bytes(range(256)) * 20
    storage.write_bytes(storage.join(root, "a", "runs", "r1", "x.bin"), data)
    assert storage.read_bytes(storage.join(root, "a", "runs", "r1", "x.bin")) == data
    assert [(f.relative, f.size) for f in storage.list_files(storage.join(root, "a"))] == [("runs/r1/x.bin", 5120)]
    storage.delete_tree(storage.join(root, "a", "runs", "r1"))
    assert not storage.exists(storage.join(root, "a", "runs", "r1", "x.bin"))


@pytest.mark.slow  # a CLI process (about 10 s of imports and the extract's start)
def test_sigterm_ends_a_run_waiting_on_an_object_store_that_never_answers(tmp_path, silent_port):
    env = {**os.environ, **local_env(tmp_path, RECSYS_ARTIFACTS_URI=gcs_uri(silent_port))}
    env.pop("DAGSTER_HOME", None)
    seed(local_resources(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "recsys_assets", "run", "--partition", PARTITION],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output = ""
        deadline = time.monotonic() + 60
        assert process.stdout is not None
        while "interactions - read" not in output:  # the extract's first line: its write comes next
            line = process.stdout.readline()
            assert line and time.monotonic() < deadline, output
            output += line
        time.sleep(2)  # inside the store call now: a hung request of pyarrow's GCS client
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        assert time.monotonic() - sent < 15
        output += process.stdout.read()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 1
    assert output.rstrip().splitlines()[-1].startswith("run failed: interactions: interrupted (SIGTERM"), output[-2000:]


@pytest.mark.slow  # two materializations
def test_a_read_only_model_store_fails_the_release_at_once_naming_it(tmp_path, monkeypatch):
    from recsys_assets.release.model_release import model_release
    from recsys_assets_tests.cli.test_registry_repair import written_bundle
    from recsys_assets_tests.support.filesystems import read_only

    for name, value in local_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    resources = build_resources()
    store = tmp_path / "model_store"
    with dg.instance_for_test() as instance:
        assert dg.materialize(
            [written_bundle], partition_key="2026-02-28", resources=resources, instance=instance
        ).success
        with read_only(store):
            result = dg.materialize(
                [written_bundle, model_release],
                selection=["model_release"],
                partition_key="2026-02-28",
                resources=resources,
                instance=instance,
                raise_on_error=False,
            )
    assert not result.success
    assert [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY] == []
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    description = failure.step_failure_data.user_failure_data.description
    assert str(store) in description and "Read-only file system" in description and "\n" not in description
