"""Downloads in flight for content serving, shared by the clients asking for the same file.

The first GET of a file that is not stored starts one download. Its blocks are handed to
every client (a :class:`Reader` each, at its own pace) from memory as they arrive, while
sha256 is checked on the way. The last byte a client may receive is held back until the
whole download validated: a client never gets a complete-looking file whose digest is wrong.

Under ``on_demand`` (and with ``verify_before_serve``) the bytes also go to a temporary file,
which becomes the Artifact once validated. An ``on_demand`` download is claimed first in the
database (:mod:`.claims`), so that across processes and hosts one downloads the file and
the others wait for its Artifact. The download then runs to its end even when every
client left; at most :data:`WINDOW` bytes stay in memory, and a client that falls further
behind, or joins late, reads the rest from the file.

Under ``streamed`` nothing is written to disk: the download goes at the pace of its slowest
client (at most :data:`WINDOW` bytes ahead of it) and stops when the last one leaves. A
client that asks once the first block left memory starts a download of its own.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

from asgiref.sync import sync_to_async

from ..download import CannotRestart, DownloadError, DownloadResult
from ..download.defaults import BLOCK_SIZE
from ..download.executors import hashing_executor
from ..download.writers import Writer
from ..models import ContentUnit, Remote
from ..models.fields import SecretUnreadable
from ..storage import ArtifactStore
from . import claims
from .factories import factory_for

log = logging.getLogger(__name__)

#: Bytes of a download kept in memory for its readers.
WINDOW = 16 * 1024 * 1024


class FlightWriter(Writer):
    """Hands each block to the flight's readers, and to its file when it keeps one. With
    ``keep`` (``on_demand``), the finished file is handed over as the download's ``path``
    through a hard link, so that moving it into storage leaves the readers' file alone."""

    inline = True  # readers get each block as soon as it is read; slow ones slow the download

    def __init__(self, flight: "InFlight", keep: bool = False) -> None:
        self.flight = flight
        self.keep = keep

    async def write(self, block: bytes) -> None:
        flight = self.flight
        flight.append(block)
        if flight.write_fd >= 0:
            await asyncio.get_running_loop().run_in_executor(
                hashing_executor(), _write_all, flight.write_fd, block)
            flight.stored(len(block))
        else:
            await flight.room()

    async def finish(self) -> None:
        if self.keep:
            self.path = await asyncio.get_running_loop().run_in_executor(
                hashing_executor(), self.flight.durable_link)

    async def reset(self) -> None:
        if self.flight.received:
            raise CannotRestart("clients are already reading this download")

    async def abort(self) -> None:
        if self.path is not None:
            Path(self.path).unlink(missing_ok=True)
            self.path = None


def _write_all(fd: int, block: bytes) -> None:
    view = memoryview(block)
    while view:
        view = view[os.write(fd, view):]


class InFlight:
    """One download being served to any number of clients (see the module docstring)."""

    def __init__(self, key: tuple, unit: ContentUnit, working_directory: Path | None) -> None:
        self.key = key
        self.unit = unit
        self.size = unit.size
        self.blocks: deque[bytes] = deque()
        self.memory_start = 0  # offset of blocks[0]
        self.received = 0  # offset just after the last block
        self.in_file = 0  # bytes written to the file
        self.path: Path | None = None
        self.write_fd = self.read_fd = -1
        if working_directory is not None:
            working_directory.mkdir(parents=True, exist_ok=True)
            self.path = working_directory / f"serve-{os.urandom(8).hex()}.part"
            self.write_fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self.read_fd = os.open(self.path, os.O_RDONLY)
        loop = asyncio.get_running_loop()
        self.changed = asyncio.Event()  # set when bytes arrive or the download ends
        self.drained = asyncio.Event()  # set when readers moved on
        self.started = asyncio.Event()  # set when the upstream's headers came, or it failed
        self.headers: asyncio.Future = loop.create_future()
        self.done: asyncio.Future = loop.create_future()
        self.readers: set[Reader] = set()
        self.task: asyncio.Task | None = None
        self.claimed = False  # whether this process holds the download's claim (claims.py)

    @property
    def joinable(self) -> bool:
        """Whether a new client can still read this download from its first byte."""
        return not self.done.done() and (self.path is not None or self.memory_start == 0)

    # --- the writer's side -----------------------------------------------------------------
    def append(self, block: bytes) -> None:
        self.blocks.append(block)
        self.received += len(block)
        self.changed.set()

    def stored(self, count: int) -> None:
        """``count`` more bytes are in the file."""
        self.in_file += count
        self.release()

    async def room(self) -> None:
        """Wait while the slowest reader is :data:`WINDOW` bytes behind (no file to fall
        back on)."""
        while self.readers and self.received - min(r.offset for r in self.readers) > WINDOW:
            self.drained.clear()
            await self.drained.wait()

    def release(self) -> None:
        """Drop the blocks nobody needs from memory any more: without a file, those every
        reader passed; with one, those in the file that no reader needs or that overflow
        the window."""
        slowest = min((reader.offset for reader in self.readers), default=self.received)
        blocks = self.blocks
        while blocks:
            end = self.memory_start + len(blocks[0])
            if self.path is None:
                if end > slowest:
                    break
            elif end > self.in_file or (end > slowest
                                        and self.received - self.memory_start <= WINDOW):
                break
            self.memory_start = end
            blocks.popleft()
        self.drained.set()

    def finish(self, error: BaseException | None, result: DownloadResult | None = None) -> None:
        for future in (self.headers, self.done):
            if future.done():
                continue
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
                future.exception()  # no reader may be waiting: do not warn it was not retrieved
        self.changed.set()
        self.drained.set()
        self.started.set()

    # --- the readers' side -----------------------------------------------------------------
    def sendable_end(self) -> int:
        """How far readers may go now: the last byte waits for the download to validate."""
        if self.done.done() and self.done.exception() is None:
            return self.received
        return min(self.received, max(self.size - 1, 0))

    def from_memory(self, offset: int, end: int) -> list[bytes]:
        """The bytes in ``[offset, end)``, all in memory, as whole blocks where possible."""
        parts = []
        position = self.memory_start
        for block in self.blocks:
            block_end = position + len(block)
            if block_end > offset:
                start, stop = max(offset - position, 0), min(end - position, len(block))
                parts.append(block if (start, stop) == (0, len(block)) else block[start:stop])
                if block_end >= end:
                    break
            position = block_end
        return parts

    def reader_left(self, reader: "Reader") -> None:
        """A client stopped reading (or left before the first byte). The last one out closes
        the file once the download is over; under ``streamed`` it also cancels a download
        nobody reads any more (``on_demand`` ones complete: they are kept)."""
        self.readers.discard(reader)
        self.release()
        if self.readers:
            return
        if self.done.done():
            self.close_files()
        elif (self.unit.remote.policy == Remote.Policy.STREAMED and self.task is not None
              and not self.task.done()):
            self.task.cancel()

    def durable_link(self) -> Path:
        """A second name for the complete file, flushed to disk (to be moved into storage)."""
        os.fsync(self.write_fd)
        link = self.path.with_name(self.path.name + ".artifact")
        os.link(self.path, link)
        return link

    def close_files(self) -> None:
        if self.write_fd < 0:
            return
        fds, self.write_fd, self.read_fd = (self.write_fd, self.read_fd), -1, -1
        for fd in fds:
            try:
                os.close(fd)
            except OSError:
                pass


class Reader:
    """One client's position in an :class:`InFlight`; leave it with :meth:`leave`."""

    def __init__(self, flight: InFlight) -> None:
        self.flight = flight
        self.offset = 0
        flight.readers.add(self)

    async def blocks(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive; raises the download's error."""
        flight = self.flight
        while True:
            end = flight.sendable_end()
            if self.offset < end:
                if self.offset >= flight.memory_start:
                    parts = flight.from_memory(self.offset, end)
                else:  # fell behind the memory window: from the file
                    count = min(BLOCK_SIZE, flight.memory_start - self.offset)
                    parts = [await asyncio.get_running_loop().run_in_executor(
                        None, os.pread, flight.read_fd, count, self.offset)]
                for part in parts:
                    yield part
                    self.offset += len(part)
                    flight.release()
                continue
            if flight.done.done():
                error = flight.done.exception()
                if error is not None:
                    raise error
                return
            flight.changed.clear()
            await flight.changed.wait()

    def leave(self) -> None:
        self.flight.reader_left(self)


_flights: dict[tuple, InFlight] = {}


def _headers_arrived(flight: InFlight, status, headers) -> None:
    if not flight.headers.done():
        flight.headers.set_result(headers)
        flight.started.set()


_claiming: dict[tuple, asyncio.Future] = {}


async def join(unit: ContentUnit, working_directory: Path) -> Reader | None:
    """A reader of the download of ``unit`` in flight, started now if none can be joined.

    Under ``on_demand`` the download is claimed for this process first (see :mod:`.claims`):
    when another process holds the claim, this waits until that process stored the file and
    returns ``None`` (serve the stored file)."""
    key = (unit.remote_id, unit.relative_path)
    remote = unit.remote
    stores = remote.policy == Remote.Policy.ON_DEMAND
    while True:
        flight = _flights.get(key)
        if flight is not None and flight.joinable:
            return Reader(flight)
        pending = _claiming.get(key)
        if pending is None:
            break
        await asyncio.shield(pending)  # another request of this process is claiming it
    claim = stores and unit.artifact_id is None  # (a stored file gone missing: fetched again)
    if claim:
        pending = _claiming[key] = asyncio.get_running_loop().create_future()
        try:
            if not await claims.claim_or_wait(unit.pk):
                return None
        finally:
            del _claiming[key]
            pending.set_result(None)
    keeps_file = stores or remote.verify_before_serve
    flight = InFlight(key, unit, working_directory if keeps_file else None)
    flight.claimed = claim
    _flights[key] = flight
    # A context of its own: the download outlives the request that started it (under
    # on_demand it goes on after the client left), so it must not inherit the request's
    # thread-sensitive executor, which closes with the request.
    flight.task = asyncio.get_running_loop().create_task(_run(flight),
                                                         context=contextvars.Context())
    return Reader(flight)


async def _run(flight: InFlight) -> None:
    unit = flight.unit
    remote: Remote = unit.remote
    downloader = None
    renewing = (asyncio.ensure_future(claims.keep_renewed(unit.pk)) if flight.claimed
                else None)
    try:
        factory = await factory_for(remote)
        keep = remote.policy == Remote.Policy.ON_DEMAND
        downloader = factory.build(
            quote(unit.relative_path), expected_digests={"sha256": unit.sha256},
            expected_size=unit.size, writer=FlightWriter(flight, keep=keep),
            on_headers=lambda status, headers: _headers_arrived(flight, status, headers),
            # Streamed bytes are only checked, never stored: sha256 is all they need.
            digests=None if keep else ("sha256",),
            store=ArtifactStore() if keep else None,  # result.artifact: the Artifact
        )
        result = await downloader.run()
        if keep:
            await sync_to_async(_link_units)(unit, result.artifact)
        flight.finish(None, result)
    except SecretUnreadable as exc:
        log.error("content %s/%s: %s", remote.name, unit.relative_path, exc)
        flight.finish(exc)
    except DownloadError as exc:
        log.warning("serving %s of %s failed: %s", unit.relative_path, remote.name, exc)
        await sync_to_async(_record_failure)(unit, str(exc))
        flight.finish(exc)
    except asyncio.CancelledError:
        url = downloader.url if downloader is not None else unit.relative_path
        flight.finish(DownloadError(url, "download cancelled"))
        raise
    except Exception as exc:  # noqa: BLE001 - a reader must not wait forever
        log.exception("serving %s of %s crashed", unit.relative_path, remote.name)
        flight.finish(DownloadError(unit.relative_path, f"unexpected error: {exc}"))
    finally:
        if renewing is not None:
            renewing.cancel()
            await asyncio.shield(sync_to_async(claims.release)(unit.pk))
        if _flights.get(flight.key) is flight:
            del _flights[flight.key]
        if not flight.readers:
            flight.close_files()
        if flight.path is not None:
            flight.path.unlink(missing_ok=True)


def _link_units(unit: ContentUnit, artifact) -> None:
    """Point every unit of the remote with this content at its new Artifact."""
    ContentUnit.objects.filter(remote_id=unit.remote_id, sha256=unit.sha256).update(
        artifact=artifact, last_error="")


def failure_answer(error: Exception, relative_path: str) -> tuple[int, str]:
    """The status and text a client gets when the upstream download of ``relative_path``
    failed before its first byte. An upstream (or mirror) refused by the outbound address
    policy is said to be, without the address it resolved to (the server log has it)."""
    from ..download import AddressNotAllowed, NotFound

    if isinstance(error, NotFound):
        return 404, f"Not found upstream: {relative_path}\n"
    if isinstance(error, SecretUnreadable):
        return 502, (f"Upstream failure for {relative_path}: the remote is misconfigured "
                     "(see the server log)\n")
    if isinstance(error, AddressNotAllowed):
        return 502, (f"Upstream failure for {relative_path}: the upstream was refused by the "
                     "outbound address policy (see the server log)\n")
    skipped = len(getattr(error, "skipped", ()))
    refused = (f"; {skipped} other upstream URL(s) refused by the outbound address policy"
               if skipped else "")
    return 502, (f"Upstream failure for {relative_path}: "
                 f"{getattr(error, 'message', error)}{refused}\n")


def _record_failure(unit: ContentUnit, error: str) -> None:
    ContentUnit.objects.filter(pk=unit.pk).update(last_error=error[:2000])
