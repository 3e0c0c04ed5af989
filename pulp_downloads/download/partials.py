"""Partial downloads kept across runs, so the next run resumes them (as aria2's control
files do).

A :class:`PartialFiles` directory holds, per key (the expected sha256), the bytes received so
far (``KEY.part``) and a journal (``KEY.json``: the URL and the validator, ETag or
Last-Modified, of the response they came from). A download built with a
:class:`ResumableFileWriter` writes there; when it fails, is cancelled or its process is
killed, the bytes stay, and the next download of the same key asks for the rest with
``Range`` + ``If-Range``. A server whose file changed answers with the whole new file: the old
bytes are dropped. Partial files older than an age are removed by :meth:`cleanup`.
"""
from __future__ import annotations

import abc
import fcntl
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .writers import TempFileWriter, Writer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Partial:
    """What an earlier run left of a download."""

    size: int
    url: str
    validator: str


class PartialFiles:
    """The partial downloads under ``directory``, by key."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def data_path(self, key: str) -> Path:
        return self.directory / f"{key}.part"

    def journal_path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> Partial | None:
        """The partial download of ``key``, when its bytes and a usable journal exist
        (``None`` otherwise: bytes without a journal cannot be resumed, a writer starts them
        over). Only the download holding the key's file should act on it."""
        data, journal = self.data_path(key), self.journal_path(key)
        try:
            size = data.stat().st_size
            record = json.loads(journal.read_text())
            validator, url = str(record["validator"]), str(record["url"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not size or not validator:
            return None
        return Partial(size, url, validator)

    def record(self, key: str, url: str, validator: str) -> None:
        """Journal that ``key``'s bytes come from ``url`` with ``validator`` (atomically)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        journal = self.journal_path(key)
        staging = journal.with_suffix(".json.tmp")
        staging.write_text(json.dumps({"url": url, "validator": validator,
                                       "updated": time.time()}))
        os.replace(staging, journal)

    def forget(self, key: str, *, keep_data: bool = False) -> None:
        """Remove ``key``'s journal (and its bytes, unless ``keep_data``)."""
        self.journal_path(key).unlink(missing_ok=True)
        if not keep_data:
            self.data_path(key).unlink(missing_ok=True)

    def cleanup(self, older_than: float) -> int:
        """Remove partial downloads untouched for ``older_than`` seconds; returns how many
        files went."""
        return remove_untouched(self.directory, older_than)


def remove_untouched(directory: Path, older_than: float) -> int:
    """Remove the files of ``directory`` untouched for ``older_than`` seconds (a missing
    directory holds none); returns how many went."""
    cutoff = time.time() - older_than
    removed = 0
    try:
        entries = list(directory.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            if entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


class ResumableWriter(Writer, abc.ABC):
    """A writer whose bytes may outlive a failed download, for a later one to resume.

    The downloader knows such a writer by its class: after ``open()`` it reads
    :attr:`resumed` (what an earlier run left: the writer then holds those bytes, and the
    first request asks for the rest), records where each body that starts at byte 0 comes
    from with :meth:`journal`, and when a download fails with bytes worth resuming, calls
    :meth:`keep` instead of ``abort()``.
    """

    #: After ``open()``: what an earlier run left (``None``: nothing, start at byte 0).
    resumed: Partial | None = None

    @abc.abstractmethod
    def journal(self, url: str, validator: str | None) -> None:
        """Record that the bytes come from ``url`` with ``validator`` (``None``: the
        answer cannot be resumed). Blocking, and small."""

    @abc.abstractmethod
    async def keep(self) -> None:
        """Close, and leave the bytes (and their journal) for a later download."""


class ResumableFileWriter(TempFileWriter, ResumableWriter):
    """A file writer whose bytes survive a failed, cancelled or killed download, for the next
    download of the same ``key`` to resume (see the module's docstring).

    ``open()`` takes the key's file for this download alone (an exclusive lock, released
    when the file closes or the process ends); when another download holds it, this one
    writes a fresh temporary file instead and nothing is kept. After ``open()``,
    :attr:`resumed` tells what an earlier run left (the file then holds those bytes). The
    downloader journals each response's validator with :meth:`journal` and, on failure,
    calls :meth:`keep` instead of ``abort()`` when the bytes are worth resuming.
    """

    def __init__(self, partials: PartialFiles, key: str, *, fsync: bool = False,
                 fsync_min_size: int = 0, executor: ThreadPoolExecutor | None = None) -> None:
        super().__init__(partials.directory, fsync=fsync, fsync_min_size=fsync_min_size,
                         executor=executor)
        self.partials = partials
        self.key = key
        #: Whether this download holds the key's file (``False``: a plain temporary file).
        self.exclusive = False
        self.resumed: Partial | None = None

    def journal(self, url: str, validator: str | None) -> None:
        """Record where the bytes come from (blocking, small); ``None``: not resumable."""
        if not self.exclusive:
            return
        if validator:
            self.partials.record(self.key, url, validator)
        else:
            self.partials.forget(self.key, keep_data=True)

    def _new_name(self) -> str:
        return str(self.partials.data_path(self.key))

    def _create(self) -> BinaryIO:
        self.partials.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._name, os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # another download of the same content holds it
            os.close(fd)
            self._name = super()._new_name()
            self.path = Path(self._name)
            return super()._create()
        self.exclusive = True
        self.resumed = self.partials.load(self.key)
        start = self.resumed.size if self.resumed is not None else 0
        handle = os.fdopen(fd, "wb")
        handle.truncate(start)  # bytes past what the journal vouches for are dropped
        handle.seek(start)
        self.size = self._flushed_at = start
        return handle

    async def reset(self) -> None:
        await super().reset()
        self.resumed = None

    async def finish(self) -> None:
        await super().finish()
        if self.exclusive:
            self.partials.forget(self.key, keep_data=True)  # now a whole file

    async def keep(self) -> None:
        """Close the file and leave it, with its journal, for the next run."""
        if not self.exclusive:
            return await self.abort()
        await self._close_unflushed()
        log.info("kept %d bytes of %s to resume later", self.size, self.key)
        self.path = None

    async def abort(self) -> None:
        await super().abort()
        if self.exclusive:
            self.partials.forget(self.key)
