"""ArtifactBatch: many validated files made Artifacts at once, step by step.

1. :meth:`ArtifactBatch.begin` (database): checks the digests, drops files whose sha256 is
   already stored or repeated in the batch, and journals the new ones as pending;
2. :meth:`~ArtifactBatch.place` each sha256 of :attr:`~ArtifactBatch.placements` (file system
   only, from any one thread): puts the file under its Artifact path atomically;
3. :meth:`~ArtifactBatch.flush` (file system only, any thread): makes the placed files durable;
4. :meth:`~ArtifactBatch.commit` (database): flushes if not done yet, then inserts the rows and
   clears their journal entries in one transaction.

Defence in depth: every placed file's size is checked against the size to be recorded (one
``stat``, or one HEAD in object storage; never a re-read) before its row can be committed. A
file of another size is removed and left out of the commit, with the reason in
:attr:`ArtifactBatch.refused`.

A process killed between 1 and 4 leaves only journal entries, whose files
:meth:`ArtifactStore.cleanup_orphans <.store.ArtifactStore.cleanup_orphans>` removes.
The steps are separate so that an asyncio pipeline can run each where it is cheapest, and
overlap the flush of one batch with the placing of the next. Step 2, for instance:
placing a small file in local storage is a few system calls, and doing them on a thread that
already holds the GIL avoids a GIL hand-over per call (which, while the event loop is busy,
costs far more than the calls themselves).
"""
from __future__ import annotations

import concurrent.futures
import logging
import os
from pathlib import Path

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections, router, transaction
from django.utils import timezone

from ..conf import app_settings
from ..download.digests import DIGEST_ALGORITHMS, HEX_LENGTHS, digests_of
from ..download.executors import durability_executor
from ..models import Artifact, PendingArtifactFile
from ..models.bulk import chunks, insert_rows, unlogged_cursor
from .durability import flush_files
from .localfiles import place_local, write_local
from .objects import ObjectStore
from .paths import (ARTIFACT_ROOT, ArtifactError, artifact_path, local_storage_path,
                    prepare_artifact_root)

log = logging.getLogger(__name__)

#: How many threads :meth:`ArtifactBatch.place_all` uses: creating a file can wait on the disk
#: (inode allocation), and file system calls release the GIL.
PLACERS = 8

Source = Path | bytes


class ArtifactBatch:
    """Validated files on their way to becoming Artifacts (see the module docstring)."""

    def __init__(self, storage, new: dict[str, tuple[Source, dict[str, str], int]],
                 sha256s: list[str], fsync_below: int, allowed: tuple[str, ...],
                 use_syncfs: bool, restore: frozenset[str] = frozenset()) -> None:
        self.storage = storage
        self.allowed = allowed
        self.use_syncfs = use_syncfs
        self.sha256s = sha256s
        self._new = new
        self._names = {sha256: artifact_path(sha256) for sha256 in new}
        self._fsync_below = fsync_below
        self._to_flush: list[Path] = []
        self._placed: set[str] = set()
        self._flushed = False
        self._local_root = local_storage_path(storage, ARTIFACT_ROOT)
        self._objects = ObjectStore.of(storage)
        #: sha256s whose Artifact exists but whose file is put back (the row is kept).
        self._restore = restore
        self._written: list[str] = []  # placed by the caller (:meth:`written`): checked in flush
        #: ``{sha256: why}`` of the files refused: placed with another size than recorded
        #: (removed; no row is made for them).
        self.refused: dict[str, str] = {}
        self._unremoved: set[str] = set()  # refused, but removing the file failed
        #: After :meth:`commit`: the sha256s whose rows the commit inserted (new Artifacts;
        #: neither already stored nor restored ones).
        self.created: list[str] = []

    @classmethod
    def begin(cls, files: list[tuple[str | os.PathLike | bytes, dict[str, str], int]], *,
              storage=None, fsync_below: int = 0,
              restore: frozenset[str] | set[str] = frozenset(),
              allowed: tuple[str, ...] | None = None,
              use_syncfs: bool | None = None) -> "ArtifactBatch":
        """Start storing ``files``: items ``(source, digests, size)``, where the source is a
        complete temporary file (moved into storage) or the content itself (``bytes``).

        ``digests`` must hold every allowed algorithm, except for content given as bytes:
        sha256 is enough there, :meth:`complete_digests` computes the others (on any thread,
        while the files are placed; :meth:`commit` does it when it was not done). Temporary
        files that are not needed
        (already stored, or repeated) are removed. New files smaller than ``fsync_below``
        bytes, and all content given as bytes, are flushed by :meth:`commit`; larger temporary
        files must be durable already. Files whose sha256 is in ``restore`` are placed even
        though their Artifact exists (its file went missing); the row is left as it is.
        ``allowed`` (the digests every Artifact has) and ``use_syncfs`` default to the
        site's settings."""
        storage = storage or default_storage
        conf = app_settings()
        allowed = allowed or conf.allowed_checksums
        use_syncfs = conf.flush_with_syncfs if use_syncfs is None else use_syncfs
        checked: dict[str, tuple[Source, dict[str, str], int]] = {}
        discard: list[Source] = []
        for source, digests, size in files:
            source = source if isinstance(source, bytes) else Path(source)
            digests = checked_digests(
                digests, allowed, only_sha256_required=isinstance(source, bytes))
            if digests["sha256"] in checked:
                discard.append(source)
            else:
                checked[digests["sha256"]] = (source, digests, size)
        sha256s = list(checked)
        for chunk in chunks(sha256s):
            for sha256 in Artifact.objects.filter(sha256__in=chunk).values_list("sha256",
                                                                                  flat=True):
                if sha256 not in restore:
                    discard.append(checked.pop(sha256)[0])
        for source in discard:
            if isinstance(source, Path):
                source.unlink(missing_ok=True)
        batch = cls(storage, checked, sha256s, fsync_below, allowed, use_syncfs,
                    frozenset(sha256 for sha256 in restore if sha256 in checked))
        batch._journal()
        return batch

    @property
    def new(self) -> list[str]:
        """The sha256s of the files this batch stores (not stored yet, or restored)."""
        return list(self._new)

    @property
    def placements(self) -> list[str]:
        """The sha256s of the new files not placed yet, each to be passed to :meth:`place`."""
        return [sha256 for sha256 in self._new if sha256 not in self._placed]

    def _journal(self) -> None:
        if not self._new:
            return
        connection = connections[router.db_for_write(Artifact)]
        quote = connection.ops.quote_name
        now = self._now(connection)
        with transaction.atomic(using=connection.alias):  # one commit, not one per row
            insert_rows(
                connection, PendingArtifactFile._meta.db_table, ["sha256", "path", "created"],
                # In sha256 order, as every statement of a batch: concurrent batches sharing
                # content then lock rows in the same order and cannot deadlock.
                [(sha, name, now) for sha, name in sorted(self._names.items())],
                suffix=f" ON CONFLICT ({quote('sha256')}) DO UPDATE SET "
                       f"{quote('path')} = EXCLUDED.{quote('path')}, "
                       f"{quote('created')} = EXCLUDED.{quote('created')}",
            )
        if self._local_root is not None:
            prepare_artifact_root(self.storage)

    def contents_to_write(self) -> list[tuple[str, Path, bytes]]:
        """``(sha256, local path, content)`` of each new file given as bytes and not placed
        yet, in local storage: the caller may write these itself (atomically, and durably)
        and report them with :meth:`written`."""
        if self._local_root is None:
            return []
        return [(sha256, Path(self.storage.path(self._names[sha256])), source)
                for sha256, (source, _, _) in self._new.items()
                if isinstance(source, bytes) and sha256 not in self._placed]

    def written(self, sha256: str, digests: dict[str, str]) -> None:
        """Record that the caller wrote the file ``sha256`` into place and made it durable;
        ``digests`` completes its digests."""
        source, known, _ = self._new[sha256]
        if not isinstance(source, bytes):
            raise ArtifactError(f"{sha256} was not given as content")
        if digests.get("sha256", sha256) != sha256:
            raise ArtifactError(f"the file written for {sha256} has sha256 {digests['sha256']}")
        for name, value in digests.items():
            known.setdefault(name, value)
        self._written.append(sha256)
        self._placed.add(sha256)

    def place(self, sha256: str) -> None:
        """Put the new file ``sha256`` under its Artifact path (atomically; no database)."""
        source, _, size = self._new[sha256]
        try:
            destination = put_in_storage(self.storage, source, self._names[sha256],
                                         self._objects, replace=sha256 in self._restore)
            right_size = self._check_size(sha256, destination)
        except (OSError, ArtifactError):
            raise
        except Exception as exc:  # a storage backend's own errors (boto3's, ...)
            raise ArtifactError(f"the storage refused {self._names[sha256]}: "
                                f"{type(exc).__name__}: {exc}") from exc
        if (right_size and destination is not None
                and (isinstance(source, bytes) or size < self._fsync_below)):
            self._to_flush.append(destination)
        self._placed.add(sha256)

    def _check_size(self, sha256: str, local: Path | None) -> bool:
        """Whether the file placed for ``sha256`` has the size to be recorded: one ``stat``
        of ``local`` (its local path), else one HEAD of the object (or the storage's
        ``size()``). Otherwise the file is removed, the refusal (naming the sha256, the
        path and both sizes) is kept in :attr:`refused`, and ``False`` returned."""
        _, _, size = self._new[sha256]
        name = self._names[sha256]
        actual = placed_size(self.storage, name, local, self._objects)
        if actual == size:
            return True
        self.refused[sha256] = refusal(sha256, name, actual, size)
        try:
            remove_placed(self.storage, name, local, self._objects)
        except Exception as exc:  # noqa: BLE001 - the journal entry stays for the clean-up
            log.error("%s; removing the file failed: %s: %s", self.refused[sha256],
                      type(exc).__name__, exc)
            self._unremoved.add(sha256)
        else:
            log.error("%s; the file was removed", self.refused[sha256])
        return False

    def place_all(self) -> None:
        """Place every new file not placed yet, with :data:`PLACERS` threads."""
        todo = self.placements

        def place_each(sha256s: list[str]) -> None:
            for sha256 in sha256s:
                self.place(sha256)

        placers = [durability_executor().submit(place_each, todo[i::PLACERS])
                   for i in range(PLACERS)]
        concurrent.futures.wait(placers)
        for placer in placers:
            placer.result()  # the first error, once no placer runs any more

    def complete_digests(self) -> None:
        """Compute the allowed digests missing for content given as bytes (no database)."""
        for source, digests, _ in self._new.values():
            if isinstance(source, bytes):
                missing = [name for name in self.allowed if name not in digests]
                if missing:
                    digests.update(digests_of(source, missing))

    def flush(self) -> None:
        """Make every placed file durable (no database: may run on any thread, while other
        batches are placed). :meth:`commit` does it when it was not done."""
        missing = [sha256 for sha256 in self._new if sha256 not in self._placed]
        if missing:
            raise ArtifactError(f"{len(missing)} file(s) of the batch were not placed")
        written, self._written = self._written, []
        for sha256 in written:  # placed (and made durable) by the caller: one stat each
            self._check_size(sha256, Path(self.storage.path(self._names[sha256])))
        if not self._flushed:
            flush_files(self._to_flush, use_syncfs=self.use_syncfs,
                        executor=durability_executor())
            self._flushed = True

    def commit(self) -> list[str]:
        """Flush the placed files, then insert their rows and clear their journal entries in
        one transaction. Returns every sha256 of the batch (new or already stored) except
        the :attr:`refused` ones; :attr:`created` then holds the new ones."""
        self.complete_digests()
        # One flush for the batch, before the rows that make the files visible are committed.
        self.flush()
        if not self._new:
            return self.sha256s
        connection = connections[router.db_for_write(Artifact)]
        quote = connection.ops.quote_name
        now = self._now(connection)
        rows = [
            (self._names[sha], size, *(digests.get(name) for name in DIGEST_ALGORITHMS), now)
            for sha, (_, digests, size) in sorted(self._new.items()) if sha not in self.refused
        ]
        # A refused file was removed: its journal entry goes too, unless removing it failed.
        settled = sorted(sha for sha in self._new if sha not in self._unremoved)
        pending_table = quote(PendingArtifactFile._meta.db_table)
        with transaction.atomic(using=connection.alias):
            insert_rows(connection, Artifact._meta.db_table,
                        ["file", "size", *DIGEST_ALGORITHMS, "created"], rows,
                        suffix=f" ON CONFLICT ({quote('sha256')}) DO NOTHING")
            with unlogged_cursor(connection) as cursor:
                for chunk in chunks(settled):
                    cursor.execute(
                        f"DELETE FROM {pending_table} WHERE {quote('sha256')} IN "
                        f"({', '.join(['%s'] * len(chunk))})", chunk,
                    )
        self.created = [sha for sha in sorted(self._new)
                        if sha not in self.refused and sha not in self._restore]
        if self.refused:
            return [sha for sha in self.sha256s if sha not in self.refused]
        return self.sha256s

    @staticmethod
    def _now(connection):
        return Artifact._meta.get_field("created").get_db_prep_value(timezone.now(), connection)


def checked_digests(digests: dict[str, str], allowed: tuple[str, ...], *,
                    only_sha256_required: bool = False) -> dict[str, str]:
    """``digests`` lower-cased and limited to ``allowed``; raises :class:`ArtifactError` for
    unknown algorithms, wrong lengths, or an allowed one missing (only sha256 when
    ``only_sha256_required``)."""
    digests = {name.lower(): value.lower() for name, value in digests.items()}
    unknown = set(digests) - set(DIGEST_ALGORITHMS)
    if unknown:
        raise ArtifactError(f"unknown digest algorithm(s): {sorted(unknown)}")
    required = ("sha256",) if only_sha256_required else allowed
    missing = [name for name in required if name not in digests]
    if missing:
        raise ArtifactError(f"missing digest(s) for allowed algorithm(s): {missing}")
    for name, value in digests.items():
        if len(value) != HEX_LENGTHS[name]:
            raise ArtifactError(f"{name} digest has the wrong length: {value!r}")
    return {name: value for name, value in digests.items() if name in allowed}


def placed_size(storage, name: str, local: Path | None,
                objects: ObjectStore | None) -> int | None:
    """The size of the file ``name`` just placed (``None``: not there), without reading it:
    one ``stat`` of ``local`` (its local path, for local storage), else one HEAD of the object
    (``objects``: the storage's :class:`ObjectStore`), else the storage's ``size()``."""
    if local is not None:
        try:
            return os.stat(local).st_size
        except FileNotFoundError:
            return None
    if objects is not None:
        return objects.size(name)
    return storage.size(name) if storage.exists(name) else None


def remove_placed(storage, name: str, local: Path | None, objects: ObjectStore | None) -> None:
    """Remove the file ``name`` placed in ``storage`` (see :func:`placed_size`), if there."""
    if local is not None:
        local.unlink(missing_ok=True)
    elif objects is not None:
        objects.delete(name)
    elif storage.exists(name):
        storage.delete(name)


def refusal(sha256: str, name: str, actual: int | None, size: int) -> str:
    """Why the file placed at ``name`` for ``sha256`` is refused: it has ``actual`` bytes
    (``None``: it is not there) where ``size`` is recorded."""
    found = "no file" if actual is None else f"{actual} bytes"
    return (f"refused to store sha256:{sha256}: the file placed at {name} has {found}, "
            f"the download recorded {size} bytes")


def put_in_storage(storage, source: Path | bytes, name: str,
                   objects: ObjectStore | None = None, *, replace: bool = False) -> Path | None:
    """Put ``source`` (a temporary file, moved, or content) under ``name`` atomically; return
    the local path, if the storage is local (the caller makes it durable). ``objects``: the
    storage's :class:`ObjectStore`, if it has one. An object that exists already is kept
    (it holds these bytes, being named by their sha256) unless ``replace`` (a repair)."""
    local_destination = local_storage_path(storage, name)
    if local_destination is not None:
        if isinstance(source, bytes):
            write_local(source, local_destination)
        else:
            place_local(source, local_destination)
        return local_destination
    # Object storages upload atomically (a multipart upload becomes visible whole, or is
    # aborted), and an object named by its sha256 already holds these bytes.
    if not replace and (objects.exists(name) if objects is not None else storage.exists(name)):
        if isinstance(source, Path):
            source.unlink(missing_ok=True)
        return None
    if objects is not None:
        objects.put(name, source)
        if isinstance(source, Path):
            source.unlink(missing_ok=True)
        return None
    if replace and storage.exists(name):  # save() would pick another name
        storage.delete(name)
    if isinstance(source, bytes):
        stored = storage.save(name, ContentFile(source, name=os.path.basename(name)))
    else:
        with open(source, "rb") as fh:
            stored = storage.save(name, File(fh, name=os.path.basename(name)))
    if stored != name:  # pragma: no cover - a storage that renamed despite the delete
        raise ArtifactError(f"storage saved {name!r} as {stored!r}")
    if isinstance(source, Path):
        source.unlink(missing_ok=True)
    return None
