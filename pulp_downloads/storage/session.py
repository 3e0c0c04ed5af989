"""StoreSession: finished downloads stored in batches while other downloads still run."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async

from ..dbretry import aretry_database
from ..download import (DownloadResult, MemoryWriter, SinkRequest, TempFileWriter,
                        WriterChoice)
from ..download.partials import PartialFiles, ResumableFileWriter
from ..download.executors import durability_executor
from .batch import ArtifactBatch
from .helper import StoreHelper
from .kept import KeptFiles
from .paths import ARTIFACT_ROOT, artifact_path, local_storage_path, prepare_artifact_root

log = logging.getLogger(__name__)

#: Files up to this size are downloaded into memory and written straight into storage with
#: their batch (no temporary file; the event loop never creates their files).
IN_MEMORY_UP_TO = 64 * 1024
#: Files smaller than this are made durable by the session, in batches; larger ones by their
#: download as soon as they are complete, in parallel with other downloads.
FSYNC_IN_BATCH_BELOW = 256 * 1024
#: Files from this size up keep their bytes across runs when a download fails or its process
#: dies, and the next sync resumes them (see :mod:`pulp_downloads.download.partials`).
RESUMABLE_FROM = 1024 * 1024
#: A batch is stored once it is full or this many seconds after it was started, so the files
#: finished last wait little once every download is done.
BATCH_MAX_WAIT = 0.25

_DONE = object()


@dataclass(frozen=True)
class Committed:
    """What one batch of a :class:`StoreSession` stored, once its transaction committed.

    ``results``: the results of the batch now stored (refused ones excepted); ``sha256s``:
    their content, new or already stored; ``created``: the content this batch stored anew
    (neither already stored nor put back); ``refused``: ``{sha256: why}`` of the results
    whose file, once placed, had another size than the result said (removed, not stored).
    """

    results: tuple[DownloadResult, ...]
    sha256s: tuple[str, ...]
    created: tuple[str, ...] = ()
    refused: Mapping[str, str] = field(default_factory=dict)


class StoreSession:
    """Stores the results given to :meth:`accept` as Artifacts, in batches of up to
    ``batch_size``, as a two-stage pipeline: while one batch is flushed and committed, the
    next is journaled and placed. Batches commit in order. ``store`` is the
    :class:`~.store.ArtifactStore` they go to.

    A session is an :class:`~pulp_downloads.download.ArtifactSink`: give it to
    ``DownloaderFactory.build(..., store=session)`` and it chooses each download's writer
    (:meth:`writer_for`) and takes each validated result (:meth:`accept`).

    Results are finished downloads: a validated temporary file (``result.path``; files from
    :data:`FSYNC_IN_BATCH_BELOW` up must be durable already) or content kept in memory
    (``result.content``, for which sha256 is the only digest needed: the session computes the
    others). ``restore`` names sha256s whose Artifact exists but whose file is missing: their
    files are put back. ``ready`` is awaited before the first commit.

    What was stored is told by :meth:`committed`: a :class:`Committed` per batch, in commit
    order, once its rows are committed. A result whose file, once placed, has another size
    than the result says is removed and not stored (see :attr:`ArtifactBatch.refused`); its
    batch's :class:`Committed` names it.

    Memory stays bounded: :meth:`accept` waits while ``2 * batch_size`` results wait to be
    stored. :meth:`close` stores what is left and raises the first storing error.

    The database steps (journal, commit) are retried while the database is unavailable (see
    :mod:`pulp_downloads.dbretry`). When storing fails anyway, and ``kept`` is given, every
    result taken and not committed (and every result added after) is kept there for a
    later sync to store without downloading it again.
    """

    def __init__(self, store: Any, *, batch_size: int = 200,
                 partials: PartialFiles | None = None,
                 restore: set[str] | frozenset[str] = frozenset(),
                 ready: asyncio.Future[object] | None = None,
                 kept: KeptFiles | None = None) -> None:
        self.store = store
        self.batch_size = batch_size
        #: Where downloads of large files keep their bytes across runs (None: they do not).
        self.partials = partials
        self.restore = restore
        self.ready = ready
        #: Where validated files are kept when storing fails (None: they are not).
        self.kept = kept
        #: What each committed batch stored, in order; ``None`` once the session is over.
        self._committed: asyncio.Queue[Committed | None] = asyncio.Queue()
        #: The batches taken and not committed yet, by id: their results and, once
        #: journaled, their ArtifactBatch.
        self._uncommitted: dict[int, tuple[list[DownloadResult], ArtifactBatch | None]] = {}
        self._queue: asyncio.Queue = asyncio.Queue(maxsize=batch_size * 2)
        self._helper: asyncio.Future | None = None  # started with the first content in memory
        self.task = asyncio.ensure_future(self._run())
        # Whatever ends the session (even a cancel before it ran) ends committed().
        self.task.add_done_callback(lambda _: self._committed.put_nowait(None))

    # --- the sink ----------------------------------------------------------------------------
    def writer_for(self, request: SinkRequest) -> WriterChoice | None:
        """Where a download should go to be stored by this session. Files of a known size up
        to :data:`IN_MEMORY_UP_TO` go to memory with sha256 only (the session computes the
        other digests while storing); larger ones to a temporary file in the working
        directory, made durable at once from :data:`FSYNC_IN_BATCH_BELOW` up, and kept
        across runs (for the next to resume) from :data:`RESUMABLE_FROM` up when their
        sha256 is known and the session has ``partials``."""
        size, key = request.expected_size, request.expected_digests.get("sha256")
        if size is not None and size <= IN_MEMORY_UP_TO:
            return WriterChoice(MemoryWriter(size), ("sha256",))
        if (key is not None and self.partials is not None and size is not None
                and size >= RESUMABLE_FROM):
            return WriterChoice(ResumableFileWriter(self.partials, key, fsync=True,
                                                    fsync_min_size=FSYNC_IN_BATCH_BELOW))
        return WriterChoice(TempFileWriter(request.working_directory, fsync=True,
                                           fsync_min_size=FSYNC_IN_BATCH_BELOW))

    async def accept(self, result: DownloadResult) -> None:
        """Take ``result`` for storing (waits while storing is behind); it is stored with
        its batch (see :meth:`committed`). Raises ``RuntimeError`` once the session is over
        (having kept the result, when the session failed and has ``kept``)."""
        if self.task.done():
            if self.kept is not None and not self.task.cancelled() and self.task.exception():
                await asyncio.get_running_loop().run_in_executor(
                    durability_executor(), self._keep, [(result, None)])
            raise RuntimeError("the store session is over")
        if result.content is not None and self._helper is None:
            self._helper = asyncio.ensure_future(self._start_helper())
        await self._queue.put(result)

    async def finish(self) -> None:
        """Store everything added (errors stay in :attr:`task`)."""
        if not self.task.done():
            await self._queue.put(_DONE)
        await asyncio.wait([self.task])

    async def close(self) -> None:
        """Store everything added; raise the first error met while storing."""
        await self.finish()
        self.task.result()

    async def committed(self) -> AsyncIterator[Committed]:
        """What each batch stored, in commit order, as it commits; ends with the session
        (once every batch committed, or the session failed or was cancelled). One reader."""
        while (report := await self._committed.get()) is not None:
            yield report

    # --- the pipeline ----------------------------------------------------------------------
    async def _next_batch(self) -> tuple[list[DownloadResult], bool]:
        """Up to ``batch_size`` results: those already waiting at once, then more as they
        come, until the batch is full or :data:`BATCH_MAX_WAIT` has passed. Also says whether
        the session was closed. (Taking waiting items one loop iteration each would tie the
        storing rate to how busy the event loop is, and stall the downloads behind it.)"""
        batch: list[DownloadResult] = []
        deadline = time.monotonic() + BATCH_MAX_WAIT
        while len(batch) < self.batch_size:
            if self._queue.empty():
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), timeout)
                except asyncio.TimeoutError:
                    break
            else:
                item = self._queue.get_nowait()
            if item is _DONE:
                return batch, True
            batch.append(item)
        return batch, False

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        fanout = loop.run_in_executor(durability_executor(), self._prepare_fanout)
        committing: asyncio.Future | None = None
        helper: StoreHelper | None = None
        failed = False
        try:
            done = False
            while not done:
                batch, done = await self._next_batch()
                if not batch:
                    continue
                self._uncommitted[id(batch)] = (batch, None)
                if self._helper is not None and helper is None:
                    helper = await self._helper
                stored = await aretry_database(self._begin, batch,
                                               what="journaling a batch of downloads")
                self._uncommitted[id(batch)] = (batch, stored)
                await self._place(stored, helper)
                if committing is not None:
                    await committing
                committing = asyncio.ensure_future(self._commit(stored, batch))
            if committing is not None:
                await committing
        except Exception:
            failed = True
            raise
        finally:
            # A batch whose files are placed commits, whatever failed after it (the next
            # batch, or a cancel): its files must not be left without rows. Its own failure
            # leaves them journaled for the orphan clean-up.
            if committing is not None and not committing.done():
                await asyncio.gather(asyncio.shield(committing), return_exceptions=True)
            if self._helper is not None:
                helper = await self._helper
            if helper is not None:
                await helper.close()
            await fanout
            if failed and self.kept is not None:
                await loop.run_in_executor(durability_executor(), self._keep_uncommitted)

    def _begin(self, results: list[DownloadResult]) -> ArtifactBatch:
        return self.store.begin(
            [(result.path if result.content is None else result.content, result.digests,
              result.size) for result in results],
            fsync_below=FSYNC_IN_BATCH_BELOW, restore=self.restore)

    async def _commit(self, batch: ArtifactBatch, results: list[DownloadResult]) -> None:
        await asyncio.get_running_loop().run_in_executor(durability_executor(), batch.flush)
        if self.ready is not None:
            await asyncio.shield(self.ready)
        sha256s = await aretry_database(batch.commit, what="committing a batch of "
                                        f"{len(batch.sha256s)} Artifact(s)")
        del self._uncommitted[id(results)]
        self._committed.put_nowait(Committed(
            tuple(result for result in results
                  if result.digests["sha256"] not in batch.refused),
            tuple(sha256s), tuple(batch.created), dict(batch.refused)))

    def _keep_uncommitted(self) -> None:
        """Keep the results of the batches not committed and of those still queued (the
        session failed: none will be stored)."""
        pending = [(result, batch) for results, batch in self._uncommitted.values()
                   for result in results]
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not _DONE:
                pending.append((item, None))
        self._uncommitted.clear()
        self._keep(pending)

    def _keep(self, pending: list[tuple[DownloadResult, ArtifactBatch | None]]) -> None:
        """Keep each validated result in :attr:`kept`: its content, its file, or (placed in
        local storage by its journaled ``batch`` and not committed) a link to the placed
        file."""
        count = size = 0
        new = {id(batch): set(batch.new) for _, batch in pending if batch is not None}
        for result, batch in pending:
            sha256 = result.digests.get("sha256", "")
            if batch is not None and sha256 not in new[id(batch)]:
                kept = False  # stored already, or twice in the batch
            elif result.content is not None:
                kept = self.kept.keep(sha256, result.content)
            elif result.path is not None and result.path.exists():
                kept = self.kept.keep(sha256, result.path)
                if kept:
                    result.path = None
            elif batch is not None:  # placed, and not committed
                placed = local_storage_path(self.store.storage, artifact_path(sha256))
                kept = placed is not None and placed.exists() and self.kept.keep(
                    sha256, placed, link=True)
            else:
                kept = False
            count += kept
            size += result.size if kept else 0
        if count:
            log.warning("storing failed: %d validated file(s) (%d bytes) kept in %s for the "
                        "next sync", count, size, self.kept.directory)

    def _prepare_fanout(self) -> None:
        """With local storage, create the artifact fan-out directories that are missing (once
        per storage), rather than one by one as files arrive."""
        try:
            prepare_artifact_root(self.store.storage)
        except OSError as exc:  # storing creates what it needs, or reports the problem
            log.debug("could not prepare the artifact directories: %s", exc)

    async def _start_helper(self) -> StoreHelper | None:
        """A store helper process, when storage is local and one can be started."""
        if local_storage_path(self.store.storage, ARTIFACT_ROOT) is None:
            return None
        try:
            return await StoreHelper.start(durability_executor())
        except OSError as exc:
            log.warning("could not start the store helper process (%s): storing in-process",
                        exc)
            return None

    async def _place(self, batch: ArtifactBatch, helper: StoreHelper | None) -> None:
        """Place the batch's new files.

        Content kept in memory goes to the store helper process, which writes it, computes the
        digests the downloads left out, and makes it durable (see :mod:`.helper`). The rest
        (temporary files, and content when there is no helper) is placed by the batch's
        threads: moved or written into local storage, or uploaded to other storages.
        """
        if helper is not None:
            contents = batch.contents_to_write()
            if contents:
                digests = await helper.write(
                    [(path, content) for _, path, content in contents],
                    algorithms=self.store.allowed_checksums, use_syncfs=self.store.use_syncfs,
                )
                for (sha256, _, _), written in zip(contents, digests):
                    batch.written(sha256, written)
        loop = asyncio.get_running_loop()
        # Digests the downloads left out are computed meanwhile.
        digests = loop.run_in_executor(durability_executor(), batch.complete_digests)
        try:
            await sync_to_async(batch.place_all, thread_sensitive=False)()
        finally:
            await digests
