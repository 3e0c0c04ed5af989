"""The SQLite database holds secrets (API tokens, sessions, encrypted remote secrets): its
files are readable by their owner only.

On every new connection to a file-based SQLite database (so on ``migrate``, ``make run``,
every web process and worker) the database file and its side files (``-wal``, ``-shm``,
``-journal``) are made ``0600``, and the app's own data directory (``VAR_DIR``, ``var/`` by
default) ``0700`` when it holds the database. SQLite creates side files with the mode of the
database file, so once the database is ``0600`` they are born that way. A database placed
elsewhere keeps its directory as the operator made it.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

#: Mode of the database file and its side files.
FILE_MODE = 0o600
#: Mode of the data directory holding the database.
DIRECTORY_MODE = 0o700
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")


def sqlite_file(settings_dict: dict) -> Path | None:
    """The database file of a SQLite connection's settings, ``None`` for an in-memory one."""
    name = str(settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:") or "mode=memory" in name:
        return None
    return Path(name)


def _restrict(path: Path, mode: int) -> None:
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & ~mode:
        try:
            os.chmod(path, current & mode)
        except OSError as exc:  # not ours: say so, do not stop the app
            log.warning("could not make %s private (mode %o): %s", path, mode, exc)


def tighten(database: Path, data_directory: Path | None) -> None:
    """Make ``database`` and its side files ``0600``; make its directory ``0700`` when it is
    ``data_directory`` (the app's own)."""
    directory = database.parent
    if data_directory is not None and directory.resolve() == Path(data_directory).resolve():
        _restrict(directory, DIRECTORY_MODE)
    for path in (database, *(Path(f"{database}{suffix}") for suffix in SIDE_SUFFIXES)):
        _restrict(path, FILE_MODE)


def on_connection_created(sender, connection, **kwargs) -> None:
    """``connection_created`` receiver: tighten a file-based SQLite database."""
    if connection.vendor != "sqlite":
        return
    database = sqlite_file(connection.settings_dict)
    if database is None:
        return
    from django.conf import settings

    tighten(database, getattr(settings, "VAR_DIR", None))
