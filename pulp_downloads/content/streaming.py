"""Downloads in flight for content serving, shared by every client asking for the same file.

The first request for a file that is not stored starts one download; its bytes go to a
temporary file (written unbuffered, so readers see them at once) and, under ``on_demand``,
become an Artifact once they validated. Every client (the first and any that join later)
streams from that file from its first byte, at its own pace, through one shared read
descriptor (``pread``), so the file can be moved into storage or removed without pulling it
from under a reader. The last block a reader may send is held back until the whole download
validated: a client never receives a complete-looking file whose digest is wrong.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from asgiref.sync import sync_to_async

from ..download import CannotRestart, DownloadError, DownloadResult
from ..download.writers import Writer
from ..models import Artifact, ContentUnit, Remote
from .factories import factory_for

log = logging.getLogger(__name__)
READ_SIZE = 1024 * 1024


class BroadcastFileWriter(Writer):
    """Writes blocks straight to a file descriptor and wakes the readers of an InFlight."""

    def __init__(self, flight: "InFlight") -> None:
        self.flight = flight
        self.path = flight.path

    @property
    def blocking_write(self):
        return self._write

    def _write(self, block: bytes) -> None:
        view = memoryview(block)
        while view:
            written = os.write(self.flight.write_fd, view)
            view = view[written:]
        self.flight.advance(len(block))

    async def reset(self) -> None:
        if self.flight.written:
            raise CannotRestart("clients are already reading this download")

    async def abort(self) -> None:
        self.path = None


class InFlight:
    """One download being served to any number of clients."""

    def __init__(self, key: tuple, unit: ContentUnit, working_directory: Path) -> None:
        self.key = key
        self.unit = unit
        self.size = unit.size
        working_directory.mkdir(parents=True, exist_ok=True)
        self.path = working_directory / f"serve-{os.urandom(8).hex()}.part"
        self.write_fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self.read_fd = os.open(self.path, os.O_RDONLY)
        self.written = 0
        self.loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()
        self.headers: asyncio.Future = self.loop.create_future()
        self.done: asyncio.Future = self.loop.create_future()
        self.readers = 0
        self.task: asyncio.Task | None = None

    def advance(self, count: int) -> None:
        """Called by the writer (any thread) once ``count`` more bytes are in the file."""
        self.written += count
        self.loop.call_soon_threadsafe(self.changed.set)

    async def read_from(self, offset: int) -> AsyncIterator[bytes]:
        """The file's bytes from ``offset``, as they arrive; raises the download's error."""
        while True:
            done = self.done.done() and self.done.exception() is None
            limit = self.written if done else min(self.written, max(self.size - 1, 0))
            if offset < limit:
                count = min(READ_SIZE, limit - offset)
                block = await self.loop.run_in_executor(None, os.pread, self.read_fd, count, offset)
                offset += len(block)
                yield block
                continue
            if self.done.done():
                error = self.done.exception()
                if error is not None:
                    raise error
                return
            self.changed.clear()
            waiter = asyncio.ensure_future(self.changed.wait())
            await asyncio.wait({waiter, self.done}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()

    def reader_left(self) -> None:
        """A client stopped reading (or left before the first byte). The last one out closes
        the files once the download is over; under ``streamed`` it also cancels a download
        nobody reads any more (``on_demand`` ones complete: they are kept)."""
        self.readers -= 1
        if self.readers > 0:
            return
        if self.done.done():
            self.close_files()
        elif (self.unit.remote.policy == Remote.Policy.STREAMED and self.task is not None
              and not self.task.done()):
            self.task.cancel()

    def close_files(self) -> None:
        if self.write_fd < 0:
            return
        fds, self.write_fd, self.read_fd = (self.write_fd, self.read_fd), -1, -1
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


_flights: dict[tuple, InFlight] = {}


def _headers_future_set(flight: InFlight, status, headers) -> None:
    if not flight.headers.done():
        flight.headers.set_result(headers)


async def join(unit: ContentUnit, working_directory: Path) -> InFlight:
    """The download of ``unit`` in flight, started now if none is."""
    key = (unit.remote_id, unit.relative_path)
    flight = _flights.get(key)
    if flight is not None and not flight.done.done():
        return flight
    flight = InFlight(key, unit, working_directory)
    _flights[key] = flight
    # A context of its own: the download outlives the request that started it (under
    # on_demand it goes on after the client left), so it must not inherit the request's
    # thread-sensitive executor, which closes with the request.
    flight.task = asyncio.get_running_loop().create_task(_run(flight), context=contextvars.Context())
    return flight


async def _run(flight: InFlight) -> None:
    unit = flight.unit
    remote: Remote = unit.remote
    factory = await factory_for(remote)
    downloader = factory.build(
        quote(unit.relative_path), expected_digests={"sha256": unit.sha256},
        expected_size=unit.size, writer=BroadcastFileWriter(flight),
        on_headers=lambda status, headers: _headers_future_set(flight, status, headers),
        # Streamed bytes are only checked, never stored: sha256 is all they need.
        digests=None if remote.policy == Remote.Policy.ON_DEMAND else ("sha256",),
    )
    try:
        result = await downloader.run()
        if remote.policy == Remote.Policy.ON_DEMAND:
            await sync_to_async(_save)(flight, result)
        flight.done.set_result(result)
    except DownloadError as exc:
        log.warning("serving %s of %s failed: %s", unit.relative_path, remote.name, exc)
        await sync_to_async(_record_failure)(unit, str(exc))
        _fail(flight, exc)
    except asyncio.CancelledError:
        _fail(flight, DownloadError(downloader.url, "download cancelled"))
        raise
    except Exception as exc:  # noqa: BLE001 - a reader must not wait forever
        log.exception("serving %s of %s crashed", unit.relative_path, remote.name)
        _fail(flight, DownloadError(downloader.url, f"unexpected error: {exc}"))
    finally:
        if _flights.get(flight.key) is flight:
            del _flights[flight.key]
        if flight.readers == 0:
            flight.close_files()
        Path(flight.path).unlink(missing_ok=True)


def _fail(flight: InFlight, error: Exception) -> None:
    for future in (flight.headers, flight.done):
        if not future.done():
            future.set_exception(error)
            future.exception()  # no reader may be waiting: do not warn it was never retrieved


def _save(flight: InFlight, result: DownloadResult) -> None:
    """Keep the validated bytes as an Artifact. A hard link to the served file is moved into
    storage, so readers still streaming it are not disturbed."""
    os.fsync(flight.write_fd)
    link = flight.path.with_name(flight.path.name + ".artifact")
    os.link(flight.path, link)
    artifact = Artifact.from_validated_file(link, result.digests, result.size)
    ContentUnit.objects.filter(remote_id=flight.unit.remote_id, sha256=flight.unit.sha256).update(
        artifact=artifact, last_error="")


def failure_answer(error: Exception, relative_path: str) -> tuple[int, str]:
    """The status and text a client gets when the upstream download of ``relative_path``
    failed before its first byte."""
    from ..download import NotFound
    from ..models.fields import SecretUnreadable

    if isinstance(error, NotFound):
        return 404, f"Not found upstream: {relative_path}\n"
    if isinstance(error, SecretUnreadable):
        return 502, (f"Upstream failure for {relative_path}: the remote is misconfigured "
                     "(see the server log)\n")
    return 502, f"Upstream failure for {relative_path}: {getattr(error, 'message', error)}\n"


def _record_failure(unit: ContentUnit, error: str) -> None:
    ContentUnit.objects.filter(pk=unit.pk).update(last_error=error[:2000])
