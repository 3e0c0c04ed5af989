"""ArtifactStore: validated files in, Artifacts out."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from ..conf import app_settings
from ..download import DownloadResult, SinkRequest, WriterChoice
from ..download.defaults import BLOCK_SIZE
from ..download.digests import digests_of_file
from ..models import Artifact, PendingArtifactFile
from ..models.bulk import chunks
from .batch import (ArtifactBatch, Source, placed_size, put_in_storage, refusal,
                    remove_placed)
from .durability import flush_files
from .objects import ObjectStore
from .paths import ARTIFACT_ROOT, ArtifactError
from .session import Committed, StoreSession

log = logging.getLogger(__name__)


class ArtifactStore:
    """Makes Artifacts of validated files in ``storage`` (default: Django's default storage).

    Every way to an Artifact goes through here: a finished download (the store is an
    :class:`~pulp_downloads.download.ArtifactSink`: ``build(..., store=ArtifactStore())``
    hands it the validated result, see :meth:`accept`; :meth:`session` stores many in
    batches), a file (:meth:`store_file`), many files or contents at once
    (:meth:`store_files`, :meth:`store_validated`). Storing is idempotent on sha256: content
    already stored is dropped and the existing Artifact returned. A file is in place and
    durable before its row is committed; a process killed in between leaves only a journal
    entry, whose file :meth:`cleanup_orphans` removes.
    """

    def __init__(self, storage=None, *, allowed_checksums: tuple[str, ...] | None = None,
                 use_syncfs: bool | None = None) -> None:
        conf = app_settings()
        self.storage = storage or default_storage
        self.allowed_checksums = allowed_checksums or conf.allowed_checksums
        self.use_syncfs = conf.flush_with_syncfs if use_syncfs is None else use_syncfs

    def begin(self, items: list[tuple[str | os.PathLike | bytes, dict[str, str], int]], *,
              fsync_below: int = 0, restore: set[str] | frozenset[str] = frozenset()
              ) -> ArtifactBatch:
        """Start storing ``items`` step by step (see :class:`ArtifactBatch`)."""
        return ArtifactBatch.begin(items, storage=self.storage, fsync_below=fsync_below,
                                   restore=restore, allowed=self.allowed_checksums,
                                   use_syncfs=self.use_syncfs)

    def store_validated(self, items: list[tuple[Source | str | os.PathLike, dict[str, str], int]],
                        *, fsync_below: int = 0) -> list[str]:
        """Store ``(source, digests, size)`` items at once; returns their sha256s (new or
        already stored) without loading Artifacts.

        A source is a complete temporary file (moved into storage) or the content itself
        (``bytes``, for which sha256 is the only digest required). New files smaller than
        ``fsync_below`` bytes, and all content given as bytes, are flushed to disk once in
        place; larger temporary files must be durable already.

        A file placed with another size than its item says is removed, and no Artifact made
        of it: once the others are committed, :class:`ArtifactError` names it (sha256, path
        and both sizes)."""
        batch = self.begin(items, fsync_below=fsync_below)
        batch.place_all()
        sha256s = batch.commit()
        if batch.refused:
            raise ArtifactError("; ".join(batch.refused.values()))
        return sha256s

    def replace_file(self, name: str, path: str | os.PathLike, size: int | None = None
                     ) -> None:
        """Put the validated file at ``path`` under the Artifact file ``name`` in place of
        what is there (a repair of a missing or corrupt file): atomically, and durably
        before returning. The Artifact row is not touched: the bytes are the ones its
        digests describe. Given the Artifact's ``size``, the placed file's size is checked
        (one ``stat`` or HEAD): a file of another size is removed and
        :class:`ArtifactError` raised."""
        objects = ObjectStore.of(self.storage)
        destination = put_in_storage(self.storage, Path(path), name, objects, replace=True)
        if size is not None:
            actual = placed_size(self.storage, name, destination, objects)
            if actual != size:
                remove_placed(self.storage, name, destination, objects)
                sha256 = "".join(name.split("/")[1:])  # artifact/ab/cdef... -> abcdef...
                raise ArtifactError(refusal(sha256, name, actual, size))
        if destination is not None:
            flush_files([destination], use_syncfs=False)

    def store_files(self, files: list[tuple[str | os.PathLike, dict[str, str], int]]
                    ) -> dict[str, Artifact]:
        """Store many validated temporary files; returns ``{sha256: Artifact}``."""
        sha256s = self.store_validated(files)
        found: dict[str, Artifact] = {}
        for chunk in chunks(sha256s):
            found.update((a.sha256, a) for a in Artifact.objects.filter(sha256__in=chunk))
        return found

    def store_file(self, path: str | os.PathLike, digests: dict[str, str] | None = None,
                   size: int | None = None) -> Artifact:
        """Move a complete temporary file into storage and return its Artifact.

        ``digests`` must hold every allowed algorithm; when ``None`` they are computed
        here."""
        path = Path(path)
        if digests is None:
            digests, size = digests_of_file(path, self.allowed_checksums, BLOCK_SIZE)
        if size is None:
            size = path.stat().st_size
        return self.store_files([(path, digests, size)])[digests["sha256"].lower()]

    def writer_for(self, request: SinkRequest) -> WriterChoice | None:
        """The sink's choice of writer: the library's default (a temporary file in the
        working directory, flushed to disk, every allowed digest)."""
        return None

    async def accept(self, result: DownloadResult) -> Artifact:
        """The sink's hand-over: :meth:`store_result` (the Artifact becomes
        ``result.artifact``)."""
        return await self.store_result(result)

    async def store_result(self, result: DownloadResult) -> Artifact:
        """Store a finished download: its temporary file moves into storage, or the content
        it kept in memory is written there."""
        source = result.content if result.content is not None else result.path
        if source is None:
            raise ArtifactError(f"the download of {result.url} kept no bytes to store")

        def store() -> Artifact:
            sha256 = self.store_validated([(source, result.digests, result.size)])[0]
            return Artifact.objects.get(sha256=sha256)

        artifact = await sync_to_async(store)()
        result.path = None
        return artifact

    def session(self, **options: Any) -> StoreSession:
        """A :class:`~.session.StoreSession` storing into this store, in batches, while more
        downloads run (``options`` as for :class:`~.session.StoreSession`)."""
        return StoreSession(self, **options)

    async def store(self, results: list[DownloadResult]) -> list[str]:
        """Store many finished downloads, in batches; returns the sha256s stored (new or
        already there). A result whose placed file had another size than it says is not
        stored: once the others are, :class:`ArtifactError` names it."""
        session = self.session()
        reports = asyncio.ensure_future(_collect(session.committed()))
        try:
            for result in results:
                await session.accept(result)
        finally:
            await session.close()
        committed = await reports
        refused = [why for report in committed for why in report.refused.values()]
        if refused:
            raise ArtifactError("; ".join(refused))
        return [sha256 for report in committed for sha256 in report.sha256s]

    def cleanup_orphans(self, older_than: timedelta) -> int:
        """Remove files left under Artifact paths by processes killed while storing them.

        Only journal entries older than ``older_than`` are considered (younger ones may
        belong to a store in progress). Returns how many orphan files were removed."""
        cutoff = timezone.now() - older_than
        removed = 0
        for pk in (PendingArtifactFile.objects.filter(created__lt=cutoff)
                   .values_list("pk", flat=True)):
            with transaction.atomic():
                pending = (PendingArtifactFile.objects.select_for_update()
                           .filter(pk=pk, created__lt=cutoff).first())
                if pending is None:
                    continue
                if not Artifact.objects.filter(sha256=pending.sha256).exists():
                    if self.storage.exists(pending.path):
                        self.storage.delete(pending.path)
                        removed += 1
                pending.delete()
        if removed:
            log.warning("removed %d orphan artifact file(s) left by an interrupted store",
                        removed)
        self._abort_stale_uploads(cutoff)
        return removed

    def _abort_stale_uploads(self, cutoff) -> None:
        """In object storage, abort multipart uploads of Artifact objects started before
        ``cutoff`` (a process killed mid-upload leaves one: invisible, but its parts are
        kept and billed until it is aborted)."""
        objects = ObjectStore.of(self.storage)
        if objects is None:
            return
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            aborted = objects.abort_uploads_before(f"{ARTIFACT_ROOT}/", cutoff)
        except (BotoCoreError, ClientError) as exc:  # the next clean-up tries again
            log.warning("could not clean up stale multipart uploads: %s", exc)
            return
        if aborted:
            log.warning("aborted %d multipart upload(s) left by an interrupted store", aborted)


async def _collect(reports: AsyncIterator[Committed]) -> list[Committed]:
    return [report async for report in reports]
