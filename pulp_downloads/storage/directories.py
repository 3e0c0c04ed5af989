"""Placement hints for directories that fan out into many files.

ext2/3/4 place a new directory's inode (and so, later, the inodes of the files created in
it) in the block group of its parent, unless the parent is marked as the top of a directory
hierarchy (``chattr +T``, ``FS_TOPDIR_FL``): then the new subdirectories are spread over the
block groups that have the most room. Creating a file in a block group that saw many recent
deletions is slow on ext4 (without a journal it scans past every recently freed inode), so
the artifact fan-out directories (``artifact/00`` … ``artifact/ff``) and the sync working
directories are better spread out than packed next to whatever else lives beside them.

The hint is only a hint: on file systems that do not know it, or when the process may not
change the directory's flags, nothing happens.
"""
from __future__ import annotations

import fcntl
import os
import struct
import sys
from pathlib import Path

# <linux/fs.h>; the numbers say "long", but file systems read and write an int.
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000
_FLAGS = struct.Struct("i")


def mark_top_directory(path: str | os.PathLike) -> bool:
    """Mark the directory ``path`` as the top of a directory hierarchy, so that the file
    system spreads its subdirectories out. Returns whether the mark is set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return False
    try:
        flags = _FLAGS.unpack(fcntl.ioctl(fd, _FS_IOC_GETFLAGS, bytes(_FLAGS.size)))[0]
        if not flags & _FS_TOPDIR_FL:
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, _FLAGS.pack(flags | _FS_TOPDIR_FL))
        return True
    except OSError:  # not supported by this file system, or not ours to change
        return False
    finally:
        os.close(fd)


def prepare_fanout_directory(path: str | os.PathLike) -> Path:
    """Create ``path`` (with its parents) if needed and mark it as a top directory (a few
    system calls: meant to be called once per batch of files, not per file)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    mark_top_directory(path)
    return path


def create_subdirectories(root: str | os.PathLike, names: list[str]) -> int:
    """Create the subdirectories ``names`` of ``root`` that do not exist yet; returns how many
    were created. Only a head start: errors are ignored (files placed later create their
    directory when it is missing). Under a top directory each new subdirectory costs a search
    for the emptiest block group, so it is worth doing once, off the event loop, before files
    are placed."""
    root = Path(root)
    created = 0
    for name in names:
        try:
            os.mkdir(root / name)
            created += 1
        except FileExistsError:
            continue
        except OSError:
            break
    return created
