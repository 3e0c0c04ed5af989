"""Writers decide where downloaded bytes go.

A writer receives the blocks of one download, in order, through ``await write(block)``.
The downloader calls ``open()`` once, then ``write()`` for each block, then either
``finish()`` (all bytes arrived; validation follows) or ``abort()`` (the download failed;
anything written must disappear). ``reset()`` is called when a download restarts from its
first byte (a retry the server would not resume): a writer that already handed bytes to
someone else cannot restart and raises :class:`CannotRestart`.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from .executors import INLINE_LIMIT, durability_executor, hashing_executor


#: A file being made durable is flushed to disk in the background every this many bytes.
EARLY_FLUSH_EVERY = 16 * 1024 * 1024


_name_prefix = secrets.token_hex(6)
_name_counter = itertools.count()


def _unique_suffix() -> str:
    """A name part no other writer of any process uses (a random per-process prefix and a
    counter: no system call per file)."""
    return f"{_name_prefix}-{next(_name_counter)}"


def _new_name_prefix() -> None:
    global _name_prefix
    _name_prefix = secrets.token_hex(6)


os.register_at_fork(after_in_child=_new_name_prefix)  # a child must not reuse its parent's names


class CannotRestart(Exception):
    """The writer already passed bytes on and cannot take the download from the start."""


class Writer:
    """Base class; the default implementation discards everything (see :class:`NullWriter`)."""

    #: The local file holding the bytes once finished, if this writer keeps one.
    path: Path | None = None
    #: The bytes once finished, if this writer keeps them in memory.
    content: bytes | None = None
    #: The bytes written so far, if this writer counts them (cross-checked at the end
    #: against the bytes every digest processed).
    size: int | None = None
    #: ``True``: ``write()`` is awaited by the download itself, block by block, before the
    #: next block is read (for writers that pass bytes on at once, or whose waiting should
    #: slow the download down). ``False``: blocks are written alongside the hashing.
    inline: bool = False

    @property
    def blocking_write(self) -> Callable[[bytes], object] | None:
        """A thread-safe blocking equivalent of ``write`` that the downloader may call from a
        worker thread instead (``None`` when the writer has none)."""
        return None

    async def open(self) -> None:
        """Prepare to receive bytes."""

    async def write(self, block: bytes) -> None:
        """Take the next block."""

    async def reset(self) -> None:
        """Discard everything written so far (the download starts again from byte 0)."""

    async def finish(self) -> None:
        """All bytes were written."""

    async def abort(self) -> None:
        """The download failed: remove whatever this writer produced."""


class NullWriter(Writer):
    """Keeps nothing: for verifying a URL's digests and size without storing it."""

    @property
    def blocking_write(self) -> Callable[[bytes], object] | None:
        return _discard


def _discard(block: bytes) -> None:
    return None


class TempFileWriter(Writer):
    """Writes to a new temporary file in ``directory`` (default: the system temp directory).

    The file is removed by ``abort()``. With ``fsync=True`` its bytes are flushed to disk by
    ``finish()``, so it can be renamed into permanent storage durably.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] | None = None,
        *,
        fsync: bool = False,
        fsync_min_size: int = 0,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.directory = Path(directory) if directory else None
        self._directory_text = str(directory) if directory else None
        self.fsync = fsync
        self.fsync_min_size = fsync_min_size
        self.size: int = 0
        self._flushed_at = 0
        self._early_flushes: list[Future[None]] = []
        self._executor = executor
        self._file: BinaryIO | None = None
        self.path: Path | None = None

    async def open(self) -> None:
        # Created in a worker thread: creating a file can wait on the disk (inode allocation),
        # which must not stall the event loop.
        self._name = self._new_name()
        self.path = Path(self._name)
        self._file = None
        loop = asyncio.get_running_loop()
        self._file = await loop.run_in_executor(durability_executor(), self._create)

    @property
    def blocking_write(self) -> Callable[[bytes], object] | None:
        return self._blocking_write

    def _blocking_write(self, block: bytes) -> None:
        file = self._file
        assert file is not None, "write() before open()"
        file.write(block)
        self.size += len(block)
        if self.fsync and self.size - self._flushed_at >= EARLY_FLUSH_EVERY:
            # Large file: let the disk catch up while the rest downloads, so the final fsync
            # has little left to write.
            self._flushed_at = self.size
            file.flush()
            self._early_flushes.append(
                durability_executor().submit(self._flush_early, file.fileno(), self.size))

    def _flush_early(self, fd: int, end: int) -> None:
        os.fdatasync(fd)

    def _create(self) -> BinaryIO:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self._name, flags, 0o600)
        except FileNotFoundError:
            Path(self._name).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._name, flags, 0o600)
        return os.fdopen(fd, "wb")

    def _opened(self) -> BinaryIO:
        """The file, once :meth:`open` created it."""
        assert self._file is not None, "the writer was not opened"
        return self._file

    def _new_name(self) -> str:
        directory = self._directory_text or tempfile.gettempdir()
        return f"{directory}/download-{_unique_suffix()}.part"

    async def write(self, block: bytes) -> None:
        if len(block) < INLINE_LIMIT:
            self._blocking_write(block)
        else:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor or hashing_executor(),
                                       self._blocking_write, block)

    async def reset(self) -> None:
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
        self.size = 0
        self._flushed_at = 0

    async def finish(self) -> None:
        if self.fsync and self.size >= self.fsync_min_size:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(durability_executor(), self._close_durably)
        else:
            self._opened().close()

    def _close_durably(self) -> None:
        file = self._opened()
        file.flush()
        for flush in self._early_flushes:
            flush.result()
        os.fsync(file.fileno())
        file.close()

    async def abort(self) -> None:
        await self._close_unflushed()
        if self.path is not None and self._file is not None:
            self.path.unlink(missing_ok=True)
        self.path = None

    async def _close_unflushed(self) -> None:
        """Close the file once the early flushes in progress are over (their errors do not
        matter: the file is given up)."""
        for flush in self._early_flushes:
            try:
                await asyncio.wrap_future(flush)
            except OSError:
                pass
        if self._file is not None and not self._file.closed:
            self._file.close()


class TooLargeForMemory(ValueError):
    """A :class:`MemoryWriter` was given more than its ``max_size`` (the download reports
    it as :class:`~.exceptions.AnswerTooLarge`)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"larger than the {limit} bytes allowed in memory")


class MemoryWriter(Writer):
    """Keeps the bytes in memory (for small documents such as manifests), up to ``max_size``.

    ``getvalue()`` returns them once the download finished. A block that would take it past
    ``max_size`` is refused (:class:`TooLargeForMemory`, reported as
    :class:`~.exceptions.AnswerTooLarge`): the writer is ``inline``, so the download stops
    reading at that block and never holds more than ``max_size`` bytes.
    """

    inline = True

    def __init__(self, max_size: int = 64 * 1024 * 1024) -> None:
        self.max_size = max_size
        self._buffer = bytearray()

    async def write(self, block: bytes) -> None:
        if len(self._buffer) + len(block) > self.max_size:
            raise TooLargeForMemory(self.max_size)
        self._buffer.extend(block)

    async def finish(self) -> None:
        self.content, self._buffer = bytes(self._buffer), bytearray()

    async def reset(self) -> None:
        self._buffer.clear()
        self.content = None

    async def abort(self) -> None:
        self._buffer.clear()
        self.content = None

    def getvalue(self) -> bytes:
        return self.content if self.content is not None else bytes(self._buffer)


class StreamWriter(Writer):
    """Hands each block to an async consumer (e.g. an HTTP response's ``write``).

    It cannot restart once a byte was handed over; before that, restarts are harmless.
    """

    def __init__(self, consumer: Callable[[bytes], Awaitable[object]]) -> None:
        self._consumer = consumer
        self.bytes_sent = 0

    async def write(self, block: bytes) -> None:
        await self._consumer(block)
        self.bytes_sent += len(block)

    async def reset(self) -> None:
        if self.bytes_sent:
            raise CannotRestart(f"{self.bytes_sent} bytes were already streamed")


class TeeWriter(Writer):
    """Writes every block to several writers at once; ``path`` is the first one's path."""

    def __init__(self, *writers: Writer) -> None:
        if not writers:
            raise ValueError("TeeWriter needs at least one writer")
        self.writers = writers

    @property
    def path(self) -> Path | None:  # type: ignore[override]
        return next((w.path for w in self.writers if w.path is not None), None)

    async def open(self) -> None:
        for writer in self.writers:
            await writer.open()

    async def write(self, block: bytes) -> None:
        await asyncio.gather(*(writer.write(block) for writer in self.writers))

    async def reset(self) -> None:
        for writer in self.writers:
            await writer.reset()

    async def finish(self) -> None:
        for writer in self.writers:
            await writer.finish()

    async def abort(self) -> None:
        for writer in self.writers:
            await writer.abort()
