"""The sync pipeline: manifest -> content units -> downloads -> Artifacts.

``sync_remote(remote)`` (sync code) and ``await async_sync_remote(remote)`` fetch the
Remote's ``PULP_MANIFEST``, record its ContentUnits, and under the ``immediate`` policy
download every file whose sha256 is not stored yet, concurrently (up to the remote's
``download_concurrency``), creating Artifacts in batches as downloads finish. A failed file
does not stop the others: the sync finishes what it can, then raises :class:`SyncError`
carrying the summary and the failed paths. Running a sync again downloads only what is still
missing.
"""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

from asgiref.sync import async_to_sync, sync_to_async
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, OuterRef, Subquery

from .models.bulk import chunks
from .conf import app_settings, library_settings
from .storage.directories import prepare_fanout_directory
from .download import DownloaderFactory, DownloadError, DownloadResult, MemoryWriter
from .download.executors import durability_executor
from .gcpause import frozen_heap
from .manifest import ManifestEntry, ManifestError, parse_manifest
from .models import Artifact, ContentUnit, Remote
from .storage import ArtifactStore
from .storage.batch import ArtifactBatch
from .storage.helper import StoreHelper
from .storage.paths import (ARTIFACT_ROOT, ArtifactError, local_storage_path,
                            prepare_artifact_root)

log = logging.getLogger(__name__)

#: Largest manifest accepted (bytes).
MAX_MANIFEST_SIZE = 256 * 1024 * 1024
#: Temporary download files untouched for this long belong to dead processes.
STALE_TEMP_FILE_AGE = timedelta(hours=6)
SYNC_DIR_PREFIX = "sync-"
#: Files smaller than this are made durable by the storing thread, in batches; larger ones by
#: the downloader as soon as they are complete, in parallel with other downloads.
FSYNC_IN_BATCH_BELOW = 256 * 1024
#: Files up to this size are downloaded into memory and written straight into storage when
#: their batch is stored (no temporary file; the event loop never creates their files).
#: At most ``3 * batch_size`` plus the downloads in flight wait to be stored (about 40 MiB
#: with the defaults), so memory stays bounded.
IN_MEMORY_UP_TO = 64 * 1024
#: A batch is stored once it is full or this many seconds after it was started, so the
#: files finished last wait little once every download is done.
BATCH_MAX_WAIT = 0.25
#: Files placed on the event loop between two yields to other tasks.
PLACE_SLICE = 16


class SyncError(Exception):
    """The sync failed; ``summary`` says what was done before (and which files failed)."""

    def __init__(self, message: str, summary: "SyncSummary | None" = None) -> None:
        super().__init__(message)
        self.summary = summary


class PartialSyncError(SyncError):
    """Some files failed to download; the others were stored (``summary`` lists both)."""


class SyncCanceled(SyncError):
    """The sync was canceled (its progress callback raised this); ``summary`` says what was
    stored before it stopped."""


@dataclass
class SyncSummary:
    """What a sync did. Counts are files (manifest lines) except ``downloaded``, which counts
    downloads: files with identical content are downloaded once."""

    listed: int = 0
    already_present: int = 0
    downloaded: int = 0
    failed: int = 0
    #: Files left for later under the ``on_demand`` and ``streamed`` policies.
    deferred: int = 0
    bytes_downloaded: int = 0
    failures: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class SyncProgress:
    """Files and bytes done and to do, as reported while a sync runs.

    Counts only grow and never pass their totals: ``bytes_done`` counts each byte received
    once (retries and resumed attempts do not count again); a file that failed counts in
    ``files_failed``, not in ``files_done``. Under ``on_demand``/``streamed`` the files not
    downloaded stay out of ``files_done`` (the summary's ``deferred`` counts them)."""

    files_total: int = 0
    files_done: int = 0
    files_failed: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    stage: str = "manifest"


ProgressCallback = Callable[[SyncProgress], object]


@dataclass
class _Plan:
    to_download: list[ManifestEntry]
    paths_by_sha256: dict[str, list[str]]
    already_present: int
    stored: set[str]  # sha256s of the listed content already stored
    #: sha256s whose Artifact exists but whose file is missing from (local) storage: they are
    #: downloaded again and their files put back.
    restore: set[str] = field(default_factory=set)


def sync_remote(remote: Remote, *, progress: ProgressCallback | None = None,
                progress_interval: float = 0.5) -> SyncSummary:
    """Sync ``remote`` from sync code; see the module docstring."""
    return async_to_sync(async_sync_remote)(
        remote, progress=progress, progress_interval=progress_interval
    )


async def async_sync_remote(remote: Remote, *, progress: ProgressCallback | None = None,
                            progress_interval: float = 0.5,
                            batch_size: int = 200) -> SyncSummary:
    """Sync ``remote`` from async code; see the module docstring.

    ``progress`` (sync or async) is called with a :class:`SyncProgress` at most every
    ``progress_interval`` seconds while the sync runs, and once at the end. When it raises
    :class:`SyncCanceled` the sync stops: downloads in flight are cancelled, what was stored
    stays, and :class:`SyncCanceled` is raised with the summary. Other errors it raises are
    logged and the sync goes on.
    """
    # Full garbage collections over the whole heap stall the loop for tens of milliseconds.
    with frozen_heap():
        return await _sync(remote, progress, progress_interval, batch_size)


async def _sync(remote: Remote, progress: ProgressCallback | None, progress_interval: float,
                batch_size: int) -> SyncSummary:
    summary = SyncSummary()
    state = SyncProgress()
    reporter = _Reporter(progress, state, progress_interval)
    try:
        return await _sync_reported(remote, summary, state, reporter, batch_size)
    except asyncio.CancelledError:
        if reporter.canceled is None:
            raise
        asyncio.current_task().uncancel()
        raise SyncCanceled(str(reporter.canceled) or "canceled", summary) from None


async def _sync_reported(remote: Remote, summary: SyncSummary, state: SyncProgress,
                         reporter: "_Reporter", batch_size: int) -> SyncSummary:
    await sync_to_async(_housekeeping)()
    fanout = asyncio.get_running_loop().run_in_executor(durability_executor(),
                                                        _prepare_artifact_fanout)
    # A fresh working directory per sync: directories that saw many files come and go get
    # slow to create files in. Files are made durable when they are stored (_store_batch).
    site = library_settings()
    working = Path(tempfile.mkdtemp(prefix=SYNC_DIR_PREFIX,
                                      dir=prepare_fanout_directory(site.working_directory)))
    library = dataclasses.replace(site, working_directory=working, fsync=True,
                                  fsync_min_size=FSYNC_IN_BATCH_BELOW, drop_cache=True)
    try:
        async with DownloaderFactory(remote, settings=library) as factory:
            entries = await _fetch_manifest(factory, remote)
            summary.listed = len(entries)
            plan = await sync_to_async(_plan)(entries)
            # Units are recorded while the first downloads run; batches are committed (and
            # linked to units) only once they are.
            recording = asyncio.ensure_future(
                sync_to_async(_record_units)(remote, entries, plan.stored))
            summary.already_present = plan.already_present
            state.files_total = len(entries)
            state.files_done = plan.already_present
            state.bytes_total = sum(entry.size for entry in entries)
            state.bytes_done = state.bytes_total - sum(e.size for e in plan.to_download)
            state.stage = "downloading"
            try:
                if remote.policy == Remote.Policy.IMMEDIATE and plan.to_download:
                    await _download_all(factory, remote, plan, summary, state, batch_size,
                                        recording)
            finally:
                if not recording.done():
                    await asyncio.wait([recording])
                if not recording.cancelled():
                    recording.exception()  # raised below unless another error is on its way
            recording.result()
            if remote.policy != Remote.Policy.IMMEDIATE:
                summary.deferred = summary.listed - summary.already_present
            state.stage = "done"
    finally:
        await reporter.stop()
        await fanout
        shutil.rmtree(working, ignore_errors=True)
    if summary.failed:
        raise PartialSyncError(
            f"{summary.failed} of {summary.listed} file(s) failed to download", summary
        )
    log.info("sync of %s: %s", remote.name, summary.as_dict())
    return summary


async def _fetch_manifest(factory: DownloaderFactory, remote: Remote) -> list[ManifestEntry]:
    writer = MemoryWriter(MAX_MANIFEST_SIZE)
    try:
        await factory.build(remote.url, writer=writer).run()
    except DownloadError as exc:
        raise SyncError(f"could not fetch the manifest: {exc}") from None
    try:
        text = writer.getvalue().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SyncError(f"the manifest is not UTF-8 text (byte {exc.start})") from None
    try:
        return parse_manifest(text)
    except ManifestError as exc:
        raise SyncError(str(exc)) from None


def _housekeeping() -> None:
    """Remove orphans of interrupted work: pending artifact files, and stale temporary files
    of syncs and of content serving (a web process stopped mid-download leaves its
    ``serving/*.part``)."""
    conf = app_settings()
    ArtifactStore().cleanup_orphans(conf.orphan_cleanup_age)
    cutoff = time.time() - STALE_TEMP_FILE_AGE.total_seconds()
    for directory in (conf.working_directory, conf.working_directory / "serving"):
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.stat().st_mtime >= cutoff:
                        continue
                    if entry.is_file() and entry.name.startswith(("download-", "serve-")):
                        os.unlink(entry.path)
                    elif entry.is_dir() and entry.name.startswith(SYNC_DIR_PREFIX):
                        shutil.rmtree(entry.path, ignore_errors=True)
        except FileNotFoundError:
            pass


def _plan(entries: list[ManifestEntry]) -> _Plan:
    """What must be downloaded: the listed content not stored yet (reads only)."""
    paths_by_sha256: dict[str, list[str]] = {}
    for entry in entries:
        paths_by_sha256.setdefault(entry.sha256, []).append(entry.relative_path)
    stored: set[str] = set()
    restore: set[str] = set()
    local = local_storage_path(default_storage, "")
    for chunk in chunks(list(paths_by_sha256)):
        for sha256, name in Artifact.objects.filter(sha256__in=chunk).values_list("sha256",
                                                                                  "file"):
            if local is not None and not os.path.exists(local / name):
                restore.add(sha256)  # the row is there, its file is not
            else:
                stored.add(sha256)
    if restore:
        log.warning("%d stored file(s) are missing: downloading them again", len(restore))
    first_entry: dict[str, ManifestEntry] = {}
    for entry in entries:
        if entry.sha256 not in stored:
            first_entry.setdefault(entry.sha256, entry)
    already = sum(len(paths) for sha, paths in paths_by_sha256.items() if sha in stored)
    return _Plan(list(first_entry.values()), paths_by_sha256, already, stored, restore)


@transaction.atomic
def _record_units(remote: Remote, entries: list[ManifestEntry], stored: set[str]) -> None:
    """Insert, update and delete the remote's ContentUnits to match ``entries``; link units
    whose content is in ``stored`` (sha256s of Artifacts)."""
    listed = {entry.relative_path: entry for entry in entries}
    existing = {unit.relative_path: unit for unit in ContentUnit.objects.filter(remote=remote)
                .only("pk", "relative_path", "sha256", "size", "artifact_id")}

    gone = [unit.pk for path, unit in existing.items() if path not in listed]
    for chunk in chunks(gone):
        ContentUnit.objects.filter(pk__in=chunk).delete()

    changed = []
    for path, unit in existing.items():
        entry = listed.get(path)
        if entry and (unit.sha256 != entry.sha256 or unit.size != entry.size):
            unit.sha256, unit.size, unit.artifact_id, unit.last_error = (
                entry.sha256, entry.size, None, "")
            changed.append(unit)
    ContentUnit.objects.bulk_update(changed, ["sha256", "size", "artifact", "last_error"],
                                    batch_size=500)
    ContentUnit.insert_new(remote.pk, [(e.relative_path, e.sha256, e.size)
                                       for path, e in listed.items() if path not in existing])
    if stored:
        unlinked = ContentUnit.objects.filter(remote=remote).exclude(
            artifact_id__isnull=False, artifact__sha256=F("sha256")
        ).values_list("sha256", flat=True)
        _link_units(remote, sorted({sha for sha in unlinked if sha in stored}))


def _begin_batch(finished: list[tuple[DownloadResult, bytes | None]],
                 restore: set[str]) -> ArtifactBatch:
    """Start storing finished downloads (each with its content when it was downloaded into
    memory): the new ones (and those in ``restore``) are journaled, the others dropped."""
    return ArtifactBatch.begin(
        [(result.path if content is None else content, result.digests, result.size)
         for result, content in finished],
        fsync_below=FSYNC_IN_BATCH_BELOW, restore=restore,
    )


def _commit_batch(remote: Remote, batch: ArtifactBatch) -> None:
    """Create the batch's Artifacts and link the remote's units to them."""
    _link_units(remote, batch.commit())


def _prepare_artifact_fanout() -> None:
    """With local storage, create the artifact fan-out directories that are missing (once per
    storage; meanwhile the manifest is fetched), rather than one by one as files arrive."""
    try:
        prepare_artifact_root(default_storage)
    except OSError as exc:  # storing creates what it needs, or reports the problem
        log.debug("could not prepare the artifact directories: %s", exc)


async def _start_helper() -> StoreHelper | None:
    """A store helper process, when storage is local and one can be started."""
    if local_storage_path(default_storage, ARTIFACT_ROOT) is None:
        return None
    try:
        return await StoreHelper.start(durability_executor())
    except OSError as exc:
        log.warning("could not start the store helper process (%s): storing in-process", exc)
        return None


async def _place(batch: ArtifactBatch, helper: StoreHelper | None) -> None:
    """Place the batch's new files.

    Content downloaded into memory goes to the store helper process, which writes it, computes
    the digests the downloads left out, and makes it durable (see :mod:`.storehelper`).
    Without a helper, placing in local storage is done right here on the event loop, a slice
    at a time: a few short system calls per file, which on threads would each wait for the
    GIL behind the busy loop. Other storages upload from threads.
    """
    if helper is not None:
        contents = batch.contents_to_write()
        if contents:
            digests = await helper.write(
                [(path, content) for _, path, content in contents],
                algorithms=app_settings().allowed_checksums,
                use_syncfs=app_settings().flush_with_syncfs,
            )
            for (sha256, _, _), written in zip(contents, digests):
                batch.written(sha256, written)
    loop = asyncio.get_running_loop()
    # Digests the downloads left out (see _download_all) are computed meanwhile.
    digests = loop.run_in_executor(durability_executor(), batch.complete_digests)
    try:
        if not batch.local:
            await sync_to_async(batch.place_all, thread_sensitive=False)()
            return
        for index, sha256 in enumerate(batch.placements, 1):
            batch.place(sha256)
            if index % PLACE_SLICE == 0:
                await asyncio.sleep(0)
    finally:
        await digests


def _link_units(remote: Remote, sha256s: list[str]) -> None:
    """Point the remote's units with these sha256s at their Artifacts (one UPDATE a chunk)."""
    artifact_id = Subquery(Artifact.objects.filter(sha256=OuterRef("sha256")).values("pk")[:1])
    for chunk in chunks(sha256s):
        ContentUnit.objects.filter(remote=remote, sha256__in=chunk).update(
            artifact_id=artifact_id, last_error=""
        )


def _record_failures(remote: Remote, failures: dict[str, str]) -> None:
    for path, error in failures.items():
        ContentUnit.objects.filter(remote=remote, relative_path=path).update(last_error=error[:2000])


async def _download_all(factory: DownloaderFactory, remote: Remote, plan: _Plan,
                        summary: SyncSummary, state: SyncProgress, batch_size: int,
                        units_recorded: asyncio.Future) -> None:
    """Download ``plan.to_download`` with bounded concurrency; store results in batches,
    committing none before ``units_recorded`` is done."""
    pending = iter(plan.to_download)
    # Bounded: when storing falls behind, downloads wait (memory stays flat).
    finished: asyncio.Queue = asyncio.Queue(maxsize=batch_size * 2)
    failures: dict[str, str] = {}
    concurrency = factory.config.download_concurrency

    def count_bytes(n: int) -> None:
        state.bytes_done += n

    async def worker() -> None:
        for entry in pending:
            memory = MemoryWriter(entry.size) if entry.size <= IN_MEMORY_UP_TO else None
            downloader = factory.build(
                quote(entry.relative_path), expected_digests={"sha256": entry.sha256},
                expected_size=entry.size, attachment=entry, progress=count_bytes,
                writer=memory, digests=None if memory is None else ("sha256",),
            )
            try:
                result = await downloader.run()
            except DownloadError as exc:
                paths = plan.paths_by_sha256[entry.sha256]
                for path in paths:
                    failures[path] = str(exc)
                state.files_failed += len(paths)
                log.warning("sync of %s: %s failed: %s", remote.name, entry.relative_path, exc)
                continue
            await finished.put((result, None if memory is None else memory.getvalue()))

    async def next_batch() -> tuple[list[tuple[DownloadResult, bytes | None]], bool]:
        """Up to ``batch_size`` finished downloads: those already waiting at once, then more
        as they finish, until the batch is full or :data:`BATCH_MAX_WAIT` has passed. Also
        says whether every download is done. (Taking waiting items one loop iteration each
        would tie the storing rate to how busy the event loop is, and stall the downloads
        behind it.)"""
        batch: list[tuple[DownloadResult, bytes | None]] = []
        deadline = time.monotonic() + BATCH_MAX_WAIT
        while len(batch) < batch_size:
            if finished.empty():
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(finished.get(), timeout)
                except asyncio.TimeoutError:
                    break
            else:
                item = finished.get_nowait()
            if item is _DONE:
                return batch, True
            batch.append(item)
        return batch, False

    async def commit(stored: ArtifactBatch,
                     batch: list[tuple[DownloadResult, bytes | None]]) -> None:
        await asyncio.get_running_loop().run_in_executor(durability_executor(), stored.flush)
        await asyncio.shield(units_recorded)
        await sync_to_async(_commit_batch)(remote, stored)
        for result, _ in batch:
            summary.downloaded += 1
            summary.bytes_downloaded += result.size
            state.files_done += len(plan.paths_by_sha256[result.digests["sha256"]])

    async def store() -> None:
        """Store batches as a two-stage pipeline: while one batch is flushed and committed,
        the next is journaled and placed. Batches commit in order."""
        committing: asyncio.Future | None = None
        helper: StoreHelper | None = None
        # Started now, ready by the first batch.
        starting = (asyncio.ensure_future(_start_helper())
                    if any(e.size <= IN_MEMORY_UP_TO for e in plan.to_download) else None)
        try:
            done = False
            while not done:
                batch, done = await next_batch()
                if not batch:
                    continue
                if starting is not None:
                    helper, starting = await starting, None
                stored = await sync_to_async(_begin_batch)(batch, plan.restore)
                await _place(stored, helper)
                if committing is not None:
                    await committing
                committing = asyncio.ensure_future(commit(stored, batch))
            if committing is not None:
                await committing
        finally:
            # A batch whose files are placed commits, whatever failed after it (the next
            # batch, or a cancel): its files must not be left without rows. Its own failure
            # leaves them journaled for the orphan clean-up.
            if committing is not None and not committing.done():
                await asyncio.gather(asyncio.shield(committing), return_exceptions=True)
            if starting is not None:
                helper = await starting
            if helper is not None:
                await helper.close()

    storer = asyncio.ensure_future(store())
    # Twice the connections (one worker waits on its slot while another streams), never more
    # workers than files.
    workers = [asyncio.ensure_future(worker())
               for _ in range(max(1, min(concurrency * 2, len(plan.to_download))))]
    downloads = asyncio.gather(*workers)
    try:
        await asyncio.wait([downloads, storer], return_when=asyncio.FIRST_COMPLETED)
        if not storer.done():  # else storing failed before every download was done
            await downloads
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(downloads, return_exceptions=True)
        if not storer.done():
            await finished.put(_DONE)
        await asyncio.wait([storer])
    try:
        storer.result()
    except (OSError, ArtifactError) as exc:
        raise SyncError(f"could not store the downloaded files: {exc}", summary) from exc
    if failures:
        await asyncio.shield(units_recorded)
        await sync_to_async(_record_failures)(remote, failures)
        summary.failed = len(failures)
        summary.failures = [{"relative_path": p, "error": e} for p, e in sorted(failures.items())]


_DONE = object()


class _Reporter:
    """Calls the progress callback every ``interval`` seconds and once at the end.

    A callback raising :class:`SyncCanceled` cancels the sync (the task that created the
    reporter); any other error is logged and reporting goes on.
    """

    def __init__(self, callback: ProgressCallback | None, state: SyncProgress, interval: float):
        self.callback = callback
        self.state = state
        self.interval = interval
        self.canceled: SyncCanceled | None = None
        self._owner = asyncio.current_task()
        self.task = asyncio.ensure_future(self._run()) if callback is not None else None

    async def _call(self) -> None:
        snapshot = SyncProgress(**asdict(self.state))
        try:
            if inspect.iscoroutinefunction(self.callback):
                await self.callback(snapshot)
            else:
                await sync_to_async(self.callback)(snapshot)
        except SyncCanceled as exc:
            if self.canceled is None:
                self.canceled = exc
                if self._owner is not None and asyncio.current_task() is not self._owner:
                    self._owner.cancel()
        except Exception as exc:  # noqa: BLE001 - a report is not worth failing the sync for
            log.warning("progress report failed (%s: %s); the sync goes on",
                        type(exc).__name__, exc)

    async def _run(self) -> None:
        while self.canceled is None:
            await asyncio.sleep(self.interval)
            await self._call()

    async def stop(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        if self.canceled is None:
            await self._call()
