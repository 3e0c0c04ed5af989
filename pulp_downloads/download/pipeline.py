"""BlockPipeline: writing and hashing a download's blocks, in order, off the event loop.

hashlib and file writes release the GIL for large buffers, so worker threads hash and write
in parallel with the event loop (which keeps reading the network). Each consumer of the
blocks (every hash algorithm, and the writer) is a *lane*: an asyncio task that processes
blocks strictly in order at its own pace, running large blocks in the thread pool. Lanes do
not wait for each other, so a fast digest never idles while a slow one finishes a block, and
a single large download keeps every core busy. When more downloads are streaming than there
are cores, a download needs no lanes: each block is written and hashed in a single thread
hand-off, and the parallelism comes from the downloads themselves. Small blocks before the
first large one are written and hashed inline (a hand-off would cost more than the work).
A writer marked ``inline`` (see :class:`~.writers.Writer`) is not a lane: ``feed()`` awaits
its ``write()`` before handing the block to the digests.

Each lane buffers at most :data:`LANE_DEPTH` blocks, so memory stays flat whatever the size.

The pipeline is the only code that advances the download's :class:`~.ledger.ByteLedger`: when
an attempt ends, normally (:meth:`BlockPipeline.close`) or not (:meth:`BlockPipeline.abort`),
every block handed over is first drained into every consumer, and only then is the ledger
settled with their common count; if the consumers may disagree, the ledger is put in doubt.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import cast

from .executors import CPUS, INLINE_LIMIT, hashing_executor
from .exceptions import AnswerTooLarge, WriterError
from .ledger import ByteLedger
from .writers import CannotRestart, TooLargeForMemory, Writer

LANE_DEPTH = 3


class _Streams:
    """Downloads streaming in this process right now (a scheduling hint, not a lock)."""

    active = 0


class _Lane:
    def __init__(
        self,
        blocking: Callable[[bytes], object] | None,
        non_blocking: Callable[[bytes], Awaitable[object]] | None,
        executor: ThreadPoolExecutor,
        processed: int,
    ) -> None:
        self.blocking = blocking
        self.non_blocking = non_blocking
        self.executor = executor
        #: Blocks to process, in order; ``None`` stops the lane.
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(LANE_DEPTH)
        self.error: BaseException | None = None
        #: Bytes this consumer has processed this attempt, including those processed before
        #: the lane started (advanced by this lane alone).
        self.processed = processed
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        non_blocking = self.non_blocking
        # Given whenever non_blocking is not (see _start_lanes).
        blocking = cast(Callable[[bytes], object], self.blocking)
        while True:
            block = await self.queue.get()
            if block is None:
                return
            if self.error is not None:
                continue
            try:
                if non_blocking is not None:
                    await non_blocking(block)
                elif len(block) < INLINE_LIMIT:
                    blocking(block)
                else:
                    await loop.run_in_executor(self.executor, blocking, block)
            except Exception as exc:  # reported by put()/close()
                self.error = exc
            else:
                self.processed += len(block)


def _all(functions: list[Callable[[bytes], object]]) -> Callable[[bytes], None]:
    def run(block: bytes) -> None:
        for function in functions:
            function(block)

    return run


class BlockPipeline:
    """Feeds one attempt's blocks to a writer and the ledger's digester, and settles the
    ledger when the attempt ends (see module docstring)."""

    def __init__(
        self,
        url: str,
        ledger: ByteLedger,
        writer: Writer,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.url = url
        self.ledger = ledger
        self._executor = executor or hashing_executor()
        self._writer = writer
        self._hash_functions = [hasher.update for hasher in ledger.digester.hashers]
        #: Bytes handed whole to every consumer this attempt (lanes may still be busy).
        self._handed = 0
        #: A block is being handed over: set while feed() runs, so a cut hand-off is seen.
        self._handing = False
        #: The thread-side work of a block fed without lanes, while it runs.
        self._running: asyncio.Future[None] | None = None
        self._settled = False
        self._lanes: list[_Lane] = []
        #: Writes and hashes a block in one call, when downloads are plentiful.
        self._combined: Callable[[bytes], None] | None = None
        _Streams.active += 1
        self._counted = True

    def _start_lanes(self) -> None:
        executor, done = self._executor, self._handed  # blocks fed directly were processed
        blocking_write = self._writer.blocking_write
        self._lanes = [_Lane(function, None, executor, done) for function in self._hash_functions]
        if self._writer.inline:
            pass  # written by feed() itself
        elif blocking_write is not None:
            self._lanes.append(_Lane(blocking_write, None, executor, done))
        else:
            self._lanes.append(_Lane(None, self._writer.write, executor, done))

    async def _feed_directly(self, block: bytes) -> None:
        """A small block before any large one: written and hashed right here, without lanes
        (for small files a thread hand-off costs more than the work)."""
        blocking_write = self._writer.blocking_write
        try:
            if self._writer.inline:
                _all(self._hash_functions)(block)
            elif blocking_write is None:
                await self._writer.write(block)
                _all(self._hash_functions)(block)
            else:
                _all([blocking_write, *self._hash_functions])(block)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        if isinstance(error, CannotRestart):
            raise WriterError(self.url, str(error)) from None
        if isinstance(error, TooLargeForMemory):
            raise AnswerTooLarge(self.url, error.limit) from None
        detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise WriterError(self.url, f"could not write the download: {detail}") from None

    def _raise_lane_error(self) -> None:
        for lane in self._lanes:
            if lane.error is not None:
                self._fail(lane.error)

    async def feed(self, block: bytes) -> None:
        """Process ``block``: directly while blocks are small, else queue it on every lane
        (waits while a lane is :data:`LANE_DEPTH` blocks behind)."""
        self._raise_lane_error()
        self._handing = True
        await self._hand_over(block)
        self._handed += len(block)
        self._handing = False
        if self._lanes:
            # While the network is faster than the lanes, reading the next block would not
            # wait: let the lanes (and whoever waits for their output) start on this one.
            await asyncio.sleep(0)

    async def _hand_over(self, block: bytes) -> None:
        if self._writer.inline:
            try:
                await self._writer.write(block)
            except Exception as exc:
                self._fail(exc)
        if self._combined is not None:
            await self._feed_combined(block)
            return
        if not self._lanes:
            if len(block) < INLINE_LIMIT:
                await self._feed_directly(block)
                return
            blocking_write = self._writer.blocking_write
            if blocking_write is not None and not self._writer.inline and _Streams.active > CPUS:
                # Plenty of downloads in flight: they provide the parallelism; one hand-off
                # per block, no lanes.
                self._combined = _all([blocking_write, *self._hash_functions])
                await self._feed_combined(block)
                return
            self._start_lanes()
        for lane in self._lanes:
            await lane.queue.put(block)

    async def _feed_combined(self, block: bytes) -> None:
        combined = self._combined
        assert combined is not None, "fed combined before choosing that mode"
        loop = asyncio.get_running_loop()
        self._running = loop.run_in_executor(self._executor, combined, block)
        try:
            await self._running
        except Exception as exc:
            self._fail(exc)
        self._running = None

    async def close(self) -> None:
        """Wait until every lane processed every block, settle the ledger; raise the first
        lane error (the ledger is then in doubt)."""
        try:
            for lane in self._lanes:
                await lane.queue.put(None)
            await asyncio.gather(*(lane.task for lane in self._lanes))
        finally:
            self._uncount()
            self._settle()
        self._raise_lane_error()

    async def abort(self) -> None:
        """The attempt failed or was cancelled: drain every block already handed over into
        every consumer, wait for work in progress (no write is left running), then settle
        the ledger, or put it in doubt when the consumers may disagree. Call it shielded."""
        try:
            if self._running is not None:
                await asyncio.wait([self._running])
            for lane in self._lanes:
                if not lane.task.done():
                    await lane.queue.put(None)
            await asyncio.gather(*(lane.task for lane in self._lanes), return_exceptions=True)
        finally:
            self._uncount()
            self._settle()

    def _settle(self) -> None:
        """Advance the ledger by the bytes every consumer processed, once; doubt it unless
        they all processed exactly the bytes handed over."""
        if self._settled:
            return
        self._settled = True
        agreed = not self._handing and all(
            lane.task.done() and not lane.task.cancelled() and lane.error is None
            and lane.processed == self._handed for lane in self._lanes)
        if agreed:
            self.ledger.settle(self._handed)
        else:
            self.ledger.doubt()

    def _uncount(self) -> None:
        if self._counted:
            _Streams.active -= 1
            self._counted = False
