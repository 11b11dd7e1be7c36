"""Hand memory back to the system between the steps that share the orchestrator process."""

import contextlib
import ctypes
import gc
import sys

import pyarrow as pa


def release_free_memory() -> None:
    """Hand memory that a step freed back to the system before the next step of the same process.

    The in-process executor runs every step in one process, and the allocators (Arrow's pool, glibc)
    keep what a step freed: at 30 M events the extract's and the training set's buffers would
    otherwise stay in the run's peak while the next steps allocate their own.
    """
    gc.collect()
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        # Not glibc (e.g. musl): nothing to trim.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").malloc_trim(0)
