"""Local child processes started warm: `python -m MODULE ARGS` forked from a process that has the libraries imported.

Every local child of a retrain (the DuckDB pairs engine, then the split, baselines, training and
evaluation steps through Pipes) used to start a fresh interpreter and import NumPy, SciPy, pandas,
pyarrow, DuckDB, implicit, scikit-learn and Optuna again: 1.2-1.6 s each, five times a retrain, most
of a small run's fixed cost (benchmarks/README.md). A starter process imports them once per
orchestrator process and forks one child per call, as `multiprocessing`'s forkserver does. Unlike
the forkserver, each child gets what a fresh `subprocess.Popen` would give it:

- the caller's file descriptors 1 and 2 *at the time of the call* (Dagster captures each step's
  output on them, and they change from step to step), passed over a Unix socket;
- the caller's environment and working directory at the time of the call;
- the project's settings read from the call's environment on first use (no module of the entrypoints
  reads a setting at import: settings are lazy). Third-party modules keep what they read at import
  (the BLAS thread counts of `TRAINING_ENV`, with which every starter is started).

The starter computes nothing, so no thread pool exists when it forks (it checks that it has one
thread). It dies with the process that started it (parent-death signal, or end of file on its
socket), and each child dies with the starter (`recsys_assets.pipes.worker.stop_with_orchestrator`).
Linux only, like the parent-death signal; one starter serves one call at a time, a concurrent call
gets a starter of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

# What the starter imports before it forks, with everything they import: all a child needs, but its settings.
ENTRYPOINTS = ("recsys_assets.train", "recsys_assets.domain.pairs_job")
# Imported by a step only when it runs (the evaluation draws the bundle's plot, the pairs engine scans
# the extracts as an Arrow dataset, which loads pandas): half a second each time.
LAZY_IMPORTS = ("matplotlib.figure", "matplotlib.backends.backend_agg", "pyarrow.dataset")
# BLAS libraries size their thread pools when they load, in the starter: implicit's ALS is
# multithreaded itself, and a multithreaded BLAS underneath it makes it much slower. OMP_NUM_THREADS
# is deliberately absent: implicit's own workers are OpenMP threads, and pinning OpenMP to one thread
# halved ALS's speed on two cores (issue 14; figures in benchmarks/README.md).
TRAINING_ENV = {"OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
_HEADER = struct.Struct("!I")
FORK_SAFE_THREAD = "jemalloc_bg_thd"


def _send(sock: socket.socket, message: dict, fds: Sequence[int] = ()) -> None:
    payload = json.dumps(message).encode()
    data = _HEADER.pack(len(payload)) + payload
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def _receive(sock: socket.socket, with_fds: int = 0) -> tuple[dict | None, list[int]]:
    """One message (None at end of file) and the file descriptors that came with it."""
    fds: list[int] = []
    if with_fds:
        head, fds, _, _ = socket.recv_fds(sock, _HEADER.size, with_fds)
    else:
        head = sock.recv(_HEADER.size)
    while head and len(head) < _HEADER.size:
        more = sock.recv(_HEADER.size - len(head))
        if not more:
            break
        head += more
    if len(head) < _HEADER.size:
        return None, fds
    (size,) = _HEADER.unpack(head)
    payload = b""
    while len(payload) < size:
        chunk = sock.recv(size - len(payload))
        if not chunk:
            return None, fds
        payload += chunk
    return json.loads(payload), fds


class WarmProcess:
    """A child started by a starter: the part of `subprocess.Popen`'s interface the callers use."""

    def __init__(self, starter: _Starter, pid: int):
        self._starter = starter
        self.pid = pid
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the child to end and return its exit status (negative: the signal that ended it)."""
        if self.returncode is None:
            self.returncode = self._starter.exit_status(self.pid, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Starter:
    """The orchestrator's handle on one starter process."""

    def __init__(self) -> None:
        """Start the starter process; its imports go on while the caller goes on (`ready` waits for them)."""
        from recsys_assets.settings import process_environment

        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        # Its own output only says why it could not start: never the caller's descriptors of the moment,
        # which belong to one step's captured output.
        self._errors: IO[bytes] | None = tempfile.TemporaryFile()  # noqa: SIM115 (closed once the starter is ready)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(theirs.fileno()), str(os.getpid())],
                env={**process_environment(), **TRAINING_ENV},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
                pass_fds=[theirs.fileno()],
            )

    def ready(self) -> None:
        """Wait until the starter has its imports done; raise with its last line of output if it failed."""
        if self._errors is None:
            return
        with self._errors as errors:
            self._errors = None
            message, _ = _receive(self._socket)
            if message is None or "ready" not in message:
                self.close()
                errors.seek(0)
                reason = (errors.read().decode(errors="replace").strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"the warm Python starter could not start: {reason}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def start(self, module: str, args: Sequence[str], env: Mapping[str, str], stdout: int, stderr: int) -> WarmProcess:
        self.ready()
        request = {"module": module, "args": list(args), "env": dict(env), "cwd": os.getcwd()}
        _send(self._socket, request, [stdout, stderr])
        started, _ = _receive(self._socket)
        if started is None or "pid" not in started:
            raise RuntimeError(f"the warm Python starter could not start {module}: {started}")
        return WarmProcess(self, int(started["pid"]))

    def exit_status(self, pid: int, timeout: float | None) -> int:
        self._socket.settimeout(timeout)
        try:
            ended, _ = _receive(self._socket)
        except TimeoutError:
            raise subprocess.TimeoutExpired(f"warm child {pid}", timeout or 0) from None
        finally:
            self._socket.settimeout(None)
        if ended is None:  # the starter died with its child (killed beside it)
            self.close()
            return -signal.SIGKILL
        return int(ended["status"])

    def close(self) -> None:
        if self._errors is not None:
            self._errors.close()
            self._errors = None
        self._socket.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


_idle: list[_Starter] = []
_lock = threading.Lock()


def _close_all() -> None:
    with _lock:
        while _idle:
            _idle.pop().close()


atexit.register(_close_all)


@contextlib.contextmanager
def starter() -> Iterator[_Starter]:
    """An idle starter of this process (started on first use), held for one child's lifetime."""
    with _lock:
        while _idle and not _idle[-1].alive():
            _idle.pop().close()
        held = _idle.pop() if _idle else None
    if held is None:
        held = _Starter()
    try:
        yield held
    except BaseException:
        held.close()  # its child may still be running: never reuse it
        raise
    with _lock:
        _idle.append(held)


def prestart() -> None:
    """Have an idle starter doing its imports now (a run's first step), unless this process has one."""
    with _lock:
        if not any(idle.alive() for idle in _idle):
            _idle.append(_Starter())


@contextlib.contextmanager
def run_module(
    module: str, args: Sequence[str], env: Mapping[str, str], *, stdout: int = 1, stderr: int = 2
) -> Iterator[WarmProcess]:
    """Start `python -m module *args` warm with `env`; use as `with run_module(...) as process: process.wait()`.

    `stdout` and `stderr` are file descriptors of this process the child writes to (by default this
    process's own, as `subprocess.Popen` leaves them).
    """
    with starter() as held:
        process = held.start(module, args, env, stdout, stderr)
        try:
            yield process
            process.wait()
        except BaseException:
            process.kill()
            process.wait()
            raise


def _child(request: dict, fds: list[int], starter_pid: int) -> None:
    """In the forked child: become `python -m module args` with the caller's stdio, environment and folder."""
    from recsys_assets.pipes.worker import die_with_parent
    from recsys_assets.settings import process_settings, replace_environment

    die_with_parent(starter_pid)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    for source, target in ((devnull, 0), (fds[0], 1), (fds[1], 2)):
        os.dup2(source, target)
    for fd in (devnull, *fds):
        os.close(fd)
    replace_environment(request["env"])
    process_settings.cache_clear()  # settings are read from the call's environment, on first use
    os.chdir(request["cwd"])
    # The import path `python -m` started in the caller's folder would have: that folder, then PYTHONPATH.
    first = [request["cwd"], *(entry for entry in request["env"].get("PYTHONPATH", "").split(os.pathsep) if entry)]
    sys.path[:] = [*first, *(entry for entry in sys.path[1:] if entry not in first)]
    sys.argv = [request["module"], *request["args"]]
    # As under `python -m`, the module runs only as __main__: the starter's imported copy is taken out of
    # sys.modules (its imports stay), or runpy warns on stderr that it is running a module already imported.
    sys.modules.pop(request["module"], None)
    status = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            status = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    # What the interpreter does at exit, without unwinding into the starter's loop.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _preload() -> None:
    """Import the entrypoints and everything they import."""
    for module in (*ENTRYPOINTS, *LAZY_IMPORTS):
        importlib.import_module(module)


def _serve(sock: socket.socket) -> None:
    """The starter's loop: one request, one fork, its pid, its exit status; until the socket closes."""
    while True:
        request, fds = _receive(sock, with_fds=2)
        if request is None:
            return
        starter_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            sock.close()
            _child(request, fds, starter_pid)
        for fd in fds:
            os.close(fd)
        _send(sock, {"pid": pid})
        _, status = os.waitpid(pid, 0)
        _send(sock, {"status": os.waitstatus_to_exitcode(status)})


def main() -> None:
    from recsys_assets.pipes.worker import die_with_parent

    sock = socket.socket(fileno=int(sys.argv[1]))
    die_with_parent(int(sys.argv[2]))
    # A child inherits these; it restores the defaults before running its module.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _preload()
    threads = [
        Path(f"/proc/self/task/{task}/comm").read_text().strip()
        for task in os.listdir("/proc/self/task")
        if int(task) != os.getpid()
    ]
    # pyarrow's jemalloc starts a purging thread at import; jemalloc's own fork handlers make forking safe
    # (the child starts without it). Any other thread could hold a lock the child would wait on forever.
    others = sorted(name for name in threads if name != FORK_SAFE_THREAD)
    if others:
        raise RuntimeError(f"the starter has threads {others} besides its own after its imports: forking is unsafe")
    _send(sock, {"ready": True})
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        _serve(sock)


if __name__ == "__main__":
    main()
