"""SyncRun: one sync of one Remote, from its manifest to linked Artifacts."""
from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Iterable, Mapping
from urllib.parse import quote

from asgiref.sync import async_to_sync, sync_to_async

from ..dbretry import aretry_database
from ..download import DownloaderFactory, DownloadError, DownloadResult, MemoryWriter
from ..download.executors import durability_executor
from ..models import Remote
from ..signals import artifact_stored
from ..storage import ArtifactStore
from ..storage.kept import KeptFiles, kept_files
from ..storage.paths import ArtifactError
from ..storage.session import StoreSession
from .manifest import ManifestEntry, ManifestError, parse_manifest
from .plan import Plan, link_units, make_plan, record_failures, record_units
from .progress import ProgressCallback, Reporter, SyncProgress
from .summary import PartialSyncError, SyncError, SyncSummary
from .workfiles import partial_files, private_library_settings, remove_stale_work_files

log = logging.getLogger(__name__)

#: Largest manifest accepted (bytes).
MAX_MANIFEST_SIZE = 256 * 1024 * 1024


def sync_remote(remote: Remote, *, progress: ProgressCallback | None = None,
                progress_interval: float = 0.5) -> SyncSummary:
    """Sync ``remote`` from sync code; see :func:`async_sync_remote`."""
    return async_to_sync(async_sync_remote)(
        remote, progress=progress, progress_interval=progress_interval
    )


async def async_sync_remote(remote: Remote, *, progress: ProgressCallback | None = None,
                            progress_interval: float = 0.5,
                            batch_size: int = 200) -> SyncSummary:
    """Fetch the Remote's ``PULP_MANIFEST``, record its ContentUnits, and under the
    ``immediate`` policy download every file whose sha256 is not stored yet, concurrently (up
    to the remote's ``download_concurrency``), storing Artifacts in batches as downloads
    finish. Running it again downloads only what is still missing.

    A failed file does not stop the others: the sync finishes what it can, then raises
    :class:`PartialSyncError` carrying the summary and the failed paths. ``progress`` (sync
    or async) is called with a :class:`SyncProgress` at most every ``progress_interval``
    seconds and once at the end. When it raises :class:`SyncCanceled` the sync stops:
    downloads in flight are cancelled, what was stored stays, and :class:`SyncCanceled` is
    raised with the summary. Other errors it raises are logged and the sync goes on.
    """
    run = SyncRun(remote, progress=progress, progress_interval=progress_interval,
                  batch_size=batch_size)
    return await run.run()


def check_against_mirrorlist(entries: list[ManifestEntry],
                             hashes: dict[str, dict[str, str]]) -> None:
    """Raise :class:`SyncError` when a Metalink mirror list gives another sha256 than the
    manifest for a path (one of them is wrong: nothing is downloaded)."""
    if not hashes:
        return
    disagree = [entry.relative_path for entry in entries
                if hashes.get(entry.relative_path, {}).get("sha256", entry.sha256)
                != entry.sha256]
    if disagree:
        shown = ", ".join(disagree[:5]) + (f" and {len(disagree) - 5} more"
                                           if len(disagree) > 5 else "")
        raise SyncError(f"the mirror list (Metalink) and the manifest give different sha256 "
                        f"digests for {len(disagree)} file(s): {shown}")


class SyncRun:
    """One sync of ``remote``: :meth:`plan`, :meth:`download` and store, with progress
    reported along the way. Run it once with :meth:`run`."""

    def __init__(self, remote: Remote, *, progress: ProgressCallback | None = None,
                 progress_interval: float = 0.5, batch_size: int = 200,
                 store: ArtifactStore | None = None) -> None:
        self.remote = remote
        self.batch_size = batch_size
        self.store = store
        self.summary = SyncSummary()
        self.state = SyncProgress()
        self.failures: dict[str, str] = {}
        self.failed_urls: dict[str, str] = {}
        self._progress = (progress, progress_interval)
        self._plan: Plan | None = None
        self._entries: list[ManifestEntry] = []
        self._entries_by_sha256: dict[str, list[ManifestEntry]] | None = None

    async def run(self) -> SyncSummary:
        """Sync; returns the summary or raises a :class:`SyncError` carrying it."""
        reporter = Reporter(self._progress[0], self.state, self._progress[1])
        await reporter.watch(self._run(), self.summary)
        if self.summary.failed:
            raise PartialSyncError(f"{self.summary.failed} of {self.summary.listed} file(s) "
                                   "failed to download", self.summary)
        summary = self.summary
        log.info("sync of %s: %d listed, %d already present, %d downloaded (%.1f MB, "
                 "%d restored), %d failed", self.remote.name, summary.listed,
                 summary.already_present, summary.downloaded, summary.bytes_downloaded / 1e6,
                 summary.restored, summary.failed)
        return self.summary

    async def _run(self) -> None:
        if self.store is None:
            self.store = await sync_to_async(ArtifactStore)()
        await aretry_database(remove_stale_work_files, self.store,
                              what="removing stale work files")
        library = private_library_settings()
        working = self._working = library.working_directory
        try:
            async with DownloaderFactory(self.remote, settings=library) as factory:
                entries = await self.fetch_manifest(factory)
                plan = await self.plan(entries)
                # Units are recorded while the first downloads run; batches are committed
                # (and linked to units) only once they are.
                recording = asyncio.ensure_future(aretry_database(
                    self._record_units, entries, plan.stored,
                    what=f"recording the content units of {self.remote.name}"))
                try:
                    if self.remote.policy == Remote.Policy.IMMEDIATE and plan.to_download:
                        await self.download(factory, recording)
                finally:
                    if not recording.done():
                        await asyncio.wait([recording])
                    if not recording.cancelled():
                        recording.exception()  # raised below unless another error is on its way
                recording.result()
                if self.remote.policy != Remote.Policy.IMMEDIATE:
                    self.summary.deferred = self.summary.listed - self.summary.already_present
                self.state.stage = "done"
        finally:
            shutil.rmtree(working, ignore_errors=True)

    async def fetch_manifest(self, factory: DownloaderFactory) -> list[ManifestEntry]:
        """The remote's manifest, parsed; raises :class:`SyncError` saying what is wrong."""
        writer = MemoryWriter(MAX_MANIFEST_SIZE)
        try:
            await factory.build(self.remote.url, writer=writer).run()
        except DownloadError as exc:
            raise SyncError(f"could not fetch the manifest: {exc}") from None
        try:
            text = writer.getvalue().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SyncError(f"the manifest is not UTF-8 text (byte {exc.start})") from None
        try:
            entries = parse_manifest(text)
        except ManifestError as exc:
            raise SyncError(str(exc)) from None
        check_against_mirrorlist(entries, factory.context.mirrorlist_hashes)
        return entries

    async def plan(self, entries: list[ManifestEntry]) -> Plan:
        """Decide what to download, and count the totals the progress reports show."""
        plan = self._plan = await aretry_database(make_plan, entries, self.store.storage,
                                                  what="planning the sync")
        self._entries = entries
        self.summary.listed = len(entries)
        self.summary.already_present = plan.already_present
        self.state.files_total = len(entries)
        self.state.files_done = plan.already_present
        self.state.bytes_total = sum(entry.size for entry in entries)
        self.state.bytes_done = self.state.bytes_total - sum(e.size for e in plan.to_download)
        self.state.stage = "downloading"
        return plan

    async def download(self, factory: DownloaderFactory, units_recorded: asyncio.Future) -> None:
        """Download the plan's files with bounded concurrency, each into a
        :class:`StoreSession` (the downloads' store) that stores them in batches, committing
        none before ``units_recorded`` is done. What each batch stored, the session says
        (:meth:`StoreSession.committed`): its units are linked and it is counted."""
        plan = self._plan
        kept = kept_files()
        taken = await self._take_kept(kept)
        session = self.store.session(
            batch_size=self.batch_size, restore=plan.restore, ready=units_recorded,
            partials=partial_files(), kept=kept,
        )
        recording = asyncio.ensure_future(self._record_stored(session))
        reused = {result.digests["sha256"] for result in taken}
        pending = iter([entry for entry in plan.to_download if entry.sha256 not in reused])
        # Twice the connections (one worker waits on its slot while another streams), never
        # more workers than files.
        count = max(1, min(factory.config.download_concurrency * 2, len(plan.to_download)))
        workers = [asyncio.ensure_future(self._download_each(factory, pending, session))
                   for _ in range(count)]
        workers.append(asyncio.ensure_future(self._store_taken(taken, session)))
        downloads = asyncio.gather(*workers)
        try:
            await asyncio.wait([downloads, session.task, recording],
                               return_when=asyncio.FIRST_COMPLETED)
            if not session.task.done() and not recording.done():
                await downloads  # else storing (or recording it) failed first
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(downloads, return_exceptions=True)
            await session.finish()
            await asyncio.wait([recording])  # what the session committed is recorded
        try:
            session.task.result()
        except (OSError, ArtifactError) as exc:
            raise SyncError(f"could not store the downloaded files: {exc}",
                            self.summary) from exc
        recording.result()
        if self.failures:
            await asyncio.shield(units_recorded)
            await aretry_database(record_failures, self.remote, self.failures,
                                  what="recording the failed files")
            self.summary.failed = len(self.failures)
            self.summary.failures = [
                {"relative_path": p, "url": self.failed_urls.get(p, ""), "error": e}
                for p, e in sorted(self.failures.items())]

    async def _take_kept(self, kept: KeptFiles) -> list[DownloadResult]:
        """The files of the plan that an earlier sync validated and could not store (see
        :mod:`..storage.kept`), taken into this sync's working directory and read again:
        each is used only when its sha256 and size are the ones listed. Not downloaded."""
        loop = asyncio.get_running_loop()
        available = await loop.run_in_executor(durability_executor(), kept.sha256s)
        taken: list[DownloadResult] = []
        for entry in self._plan.to_download:
            if entry.sha256 not in available:
                continue
            found = await loop.run_in_executor(
                durability_executor(), kept.take, entry.sha256, entry.size,
                self.store.allowed_checksums, self._working)
            if found is None:
                continue
            path, digests = found
            taken.append(DownloadResult(url=path.as_uri(), final_url=path.as_uri(),
                                        path=path, size=entry.size, digests=digests,
                                        attachment=entry))
            self.state.bytes_done += entry.size
        if taken:
            log.info("sync of %s: %d file(s) validated by an earlier sync taken from %s, not "
                     "downloaded again", self.remote.name, len(taken), kept.directory)
        return taken

    @staticmethod
    async def _store_taken(taken: list[DownloadResult], session: StoreSession) -> None:
        for result in taken:
            try:
                await session.accept(result)
            except RuntimeError:  # storing failed: the session kept the file again
                return

    async def _record_stored(self, session: StoreSession) -> None:
        """As each batch of ``session`` commits: link the units of its content and send
        ``artifact_stored`` (database thread), then count what it stored and what it
        refused."""
        async for committed in session.committed():
            if committed.sha256s:
                await aretry_database(
                    self._after_commit, list(committed.sha256s), committed.created,
                    what=f"linking the content units of {self.remote.name}")
            self._count_refused(committed.refused)
            self._count_stored(committed.results)

    async def _download_each(self, factory: DownloaderFactory, pending,
                             session: StoreSession) -> None:
        """Download entries from ``pending`` one after the other. Whatever one of them
        raises (a cancellation excepted) fails that file only: it is listed in the failures
        and the others go on."""
        for entry in pending:
            try:
                downloader = factory.build(
                    quote(entry.relative_path), expected_digests={"sha256": entry.sha256},
                    expected_size=entry.size, attachment=entry, progress=self._count_bytes,
                    store=session,  # which also chooses the writer and the digests
                )
                await downloader.run()
            except DownloadError as exc:
                self._file_failed(entry, str(exc), exc.url or "")
                log.warning("sync of %s: %s failed: %s", self.remote.name, entry.relative_path,
                            exc)
            except Exception as exc:  # noqa: BLE001 - one file's failure, whatever it is
                self._file_failed(entry, f"unexpected error: {type(exc).__name__}: {exc}", "")
                log.exception("sync of %s: %s failed unexpectedly", self.remote.name,
                              entry.relative_path)

    def _file_failed(self, entry: ManifestEntry, error: str, url: str) -> None:
        paths = self._plan.paths_by_sha256[entry.sha256]
        for path in paths:
            self.failures[path] = error
            self.failed_urls[path] = url
        self.state.files_failed += len(paths)

    def _count_bytes(self, count: int) -> None:
        self.state.bytes_done += count

    def _count_stored(self, results: Iterable[DownloadResult]) -> None:
        for result in results:
            self.summary.downloaded += 1
            self.summary.bytes_downloaded += result.size
            self.state.files_done += len(self._plan.paths_by_sha256[result.digests["sha256"]])
            if result.digests["sha256"] in self._plan.restore:
                self.summary.restored += 1

    def _count_refused(self, refused: Mapping[str, str]) -> None:
        """Downloads the store refused (their file had another size once placed): failed."""
        for sha256, why in refused.items():
            paths = self._plan.paths_by_sha256[sha256]
            for path in paths:
                self.failures[path] = why
                self.failed_urls.setdefault(path, "")
            self.state.files_failed += len(paths)

    def _record_units(self, entries: list[ManifestEntry], stored: set[str]) -> None:
        """:func:`record_units`, then ``artifact_stored`` for the files already present
        (database thread)."""
        record_units(self.remote, entries, stored)
        self._announce(stored, ())

    def _after_commit(self, sha256s: list[str], created: Iterable[str]) -> None:
        """A batch committed (database thread): link its units, send ``artifact_stored``."""
        link_units(self.remote, sha256s)
        self._announce(sha256s, created)

    def _announce(self, sha256s, created) -> None:
        """Send ``artifact_stored`` once per manifest file whose content is in ``sha256s``
        (``created``: those stored anew; the others were already, or had their file put
        back). A receiver's exception is logged and the sync goes on."""
        if not artifact_stored.has_listeners():
            return
        if self._entries_by_sha256 is None:
            self._entries_by_sha256 = {}
            for entry in self._entries:
                self._entries_by_sha256.setdefault(entry.sha256, []).append(entry)
        created = set(created)
        restore = self._plan.restore
        for sha256 in sha256s:
            for entry in self._entries_by_sha256.get(sha256, ()):
                for receiver, response in artifact_stored.send_robust(
                        SyncRun, remote=self.remote, sha256=sha256, attachment=entry,
                        created=sha256 in created,
                        restored=sha256 in restore):
                    if isinstance(response, Exception):
                        log.error("sync of %s: artifact_stored receiver %r failed: %s: %s",
                                  self.remote.name, receiver, type(response).__name__,
                                  response)
