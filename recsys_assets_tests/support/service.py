"""The online service running for real: uvicorn on a free loopback port in a thread, reached with httpx."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpx
import uvicorn
from pydantic import PrivateAttr

from recsys_assets.resources.model_store import LocalModelStore

T = TypeVar("T")


@contextmanager
def running(app: Any, timeout: float = 10.0) -> Iterator[httpx.Client]:
    """`app` served by uvicorn on 127.0.0.1 (a port the kernel picks), and a client for it; stopped on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="uvicorn")
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), timeout, "uvicorn did not start")
        assert thread.is_alive(), "uvicorn stopped while starting"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=timeout) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def eventually(check: Callable[[], T], timeout: float = 10.0, message: str = "condition not met") -> T:
    """The first truthy value of `check()`, polled every 20 ms for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout} s")
        time.sleep(0.02)


class GatedModelStore(LocalModelStore):
    """A local model store whose reads of one version's model file wait until the test opens the gate.

    It stands for a slow download: the test can look at what is served while the new version loads.
    The manifest is not held, so promoting the version (which reads it) does not wait.
    """

    _gated_version: str | None = PrivateAttr(default=None)
    _gate: threading.Event = PrivateAttr(default_factory=threading.Event)
    _waiting: threading.Event = PrivateAttr(default_factory=threading.Event)

    def hold(self, version: str) -> None:
        self._gated_version = version
        self._gate.clear()
        self._waiting.clear()

    def wait_until_loading(self, timeout: float = 10.0) -> None:
        assert self._waiting.wait(timeout), f"nothing read {self._gated_version} within {timeout} s"

    def release(self) -> None:
        self._gate.set()

    def get_object(self, key: str) -> bytes | None:
        if self._gated_version is not None and key.endswith(f"/{self._gated_version}/model.npz"):
            self._waiting.set()
            assert self._gate.wait(30), "the test never opened the gate"
        return super().get_object(key)
