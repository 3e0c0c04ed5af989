"""The process-wide thread pools of the download library.

hashlib and file writes release the GIL for large buffers, so CPU work on downloaded bytes
runs in :func:`hashing_executor` (one thread per core) while the event loop keeps reading
sockets. ``fsync`` waits on the disk rather than the CPU, so it has a pool of its own,
:func:`durability_executor`, and never holds up hashing.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

#: Blocks smaller than this are hashed and written inline: a thread hand-off costs more.
INLINE_LIMIT = 64 * 1024
CPUS = max(2, os.cpu_count() or 2)

_pools: dict[str, ThreadPoolExecutor] = {}
_lock = threading.Lock()


def _pool(name: str, workers: int) -> ThreadPoolExecutor:
    with _lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix=f"pulp-downloads-{name}"
            )
        return pool


def hashing_executor() -> ThreadPoolExecutor:
    """The pool for hashing and file writes (one thread per core, at least 2)."""
    return _pool("io", CPUS)


def durability_executor() -> ThreadPoolExecutor:
    """The pool for fsync (many threads: concurrent fsyncs share journal commits)."""
    return _pool("fsync", 32)
