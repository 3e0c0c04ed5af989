"""Making files durable: their bytes and their names survive a crash or power loss.

Storing a batch of files calls :func:`flush_files` once for the whole batch. On Linux it
issues one ``syncfs()`` per filesystem holding them (much cheaper than one ``fsync()`` per
file, which on most filesystems costs a journal commit each); elsewhere, or when turned off,
each file and each of their directories is ``fsync()``-ed, in parallel.

Standard library only at import time: the store helper process (:mod:`.helper`) uses it.
"""
from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path



def _load_syncfs():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs
    except (OSError, AttributeError):  # pragma: no cover - a libc without syncfs
        return None


_syncfs = _load_syncfs()

#: Whether this platform can flush a whole filesystem with one call.
SYNCFS_AVAILABLE = _syncfs is not None


def _open_for_flush(path: Path) -> int:
    return os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))


def fsync_path(path: Path) -> None:
    """Flush ``path``'s contents (or a directory's entries) to disk."""
    fd = _open_for_flush(path)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs_path(path: Path) -> None:
    fd = _open_for_flush(path)
    try:
        if _syncfs(fd) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"syncfs failed: {os.strerror(error)}", str(path))
    finally:
        os.close(fd)


def flush_files(paths: Iterable[str | os.PathLike], *, use_syncfs: bool = True,
                executor: Executor | None = None) -> None:
    """Return once the contents and directory entries of ``paths`` are on disk.

    The ``fsync()`` calls (without ``syncfs()``) run on ``executor``'s threads, or on a pool
    made for the call. Raises ``OSError`` when the system reports a write-back failure.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        return
    if use_syncfs and SYNCFS_AVAILABLE:
        one_per_filesystem: dict[int, Path] = {}
        for path in paths:
            one_per_filesystem.setdefault(os.stat(path).st_dev, path)
        for path in one_per_filesystem.values():
            _syncfs_path(path)
        return
    directories = sorted({path.parent for path in paths})
    # Concurrent fsyncs share journal commits: much faster than one after another.
    if executor is not None:
        list(executor.map(fsync_path, [*paths, *directories]))
        return
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="pulp-downloads-flush") as pool:
        list(pool.map(fsync_path, [*paths, *directories]))
