"""Putting complete files under their final local names atomically (standard library only,
so that the store helper process can use it without Django)."""
from __future__ import annotations

import errno
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _replace_via_staging(destination: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Create ``destination`` atomically: ``fill`` writes a staging file beside it (named for
    this process and thread), which is then renamed over it, so readers never see a partial
    file. The staging file never outlives a failure."""
    staging = destination.with_name(
        f".{destination.name}.{os.getpid()}.{threading.get_ident()}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(staging, flags, 0o600)
    except FileNotFoundError:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(staging, flags, 0o600)
    try:
        with open(fd, "wb") as fh:
            fill(fh)
        os.replace(staging, destination)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def place_local(temp_path: Path, destination: Path) -> None:
    """Atomically move a complete file to ``destination`` (same filesystem: a rename)."""
    try:
        os.replace(temp_path, destination)
        return
    except FileNotFoundError:
        if not temp_path.exists():
            raise
        destination.parent.mkdir(parents=True, exist_ok=True)
        return place_local(temp_path, destination)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise

    # Different filesystems: copy next to the destination, make the copy durable, rename.
    def copy_durably(dst: BinaryIO) -> None:
        with open(temp_path, "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
        dst.flush()
        os.fsync(dst.fileno())

    _replace_via_staging(destination, copy_durably)
    os.unlink(temp_path)


def write_local(content: bytes, destination: Path) -> None:
    """Write ``content`` to ``destination`` atomically (not flushed: see :func:`flush_files`)."""
    _replace_via_staging(destination, lambda fh: fh.write(content))
