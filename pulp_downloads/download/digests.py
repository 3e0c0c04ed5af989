"""Digests of a byte stream, and the thread pool that computes them off the event loop."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

#: Blocks smaller than this are hashed and written inline: a thread hand-off costs more.
INLINE_LIMIT = 64 * 1024
CPUS = max(2, os.cpu_count() or 2)

_executor: ThreadPoolExecutor | None = None


def hashing_executor() -> ThreadPoolExecutor:
    """The process-wide pool for hashing and file writes (one thread per core, at least 2)."""
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=CPUS, thread_name_prefix="pulp-downloads-io")
    return _executor


_io_executor: ThreadPoolExecutor | None = None


def durability_executor() -> ThreadPoolExecutor:
    """The process-wide pool for fsync: those calls wait on the disk, not the CPU, so they
    get threads of their own and never hold up hashing."""
    global _io_executor
    if _io_executor is None:
        _io_executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="pulp-downloads-fsync")
    return _io_executor


class Digester:
    """The digests (for ``algorithms``) and size of everything fed so far.

    ``hashers`` are plain hashlib objects; :class:`~.pipeline.BlockPipeline` feeds them,
    possibly from worker threads, each strictly in order.
    """

    def __init__(self, algorithms: Iterable[str]) -> None:
        self.algorithms = tuple(algorithms)
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far."""
        self.hashers = [hashlib.new(name) for name in self.algorithms]
        self.size = 0

    def hexdigests(self) -> dict[str, str]:
        """The digests of everything fed so far."""
        return {name: h.hexdigest() for name, h in zip(self.algorithms, self.hashers)}
