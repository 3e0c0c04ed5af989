"""Artifact: one stored file, identified by its sha256 and described by its digests."""
from __future__ import annotations

import hashlib
import logging
import os
import re
from datetime import timedelta
from pathlib import Path

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import models, transaction
from django.utils import timezone

from pulp_downloads.conf import DIGEST_ALGORITHMS, HEX_LENGTHS, app_settings
from pulp_downloads.dirhints import create_subdirectories, prepare_fanout_directory
from pulp_downloads.localfiles import place_local, write_local
from pulp_downloads.batching import chunks

log = logging.getLogger(__name__)

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


#: The storage directory holding every Artifact's file.
ARTIFACT_ROOT = "artifact"


class ArtifactError(ValueError):
    """Raised when an Artifact cannot be created from the given file and digests."""


def artifact_path(sha256: str) -> str:
    """The storage name of the file whose sha256 is ``sha256``: ``artifact/ab/cdef...``."""
    sha256 = sha256.lower()
    if not _SHA256_HEX.fullmatch(sha256):
        raise ArtifactError(f"not a sha256 hex digest: {sha256!r}")
    return f"{ARTIFACT_ROOT}/{sha256[:2]}/{sha256[2:]}"


#: The subdirectories of ``ARTIFACT_ROOT`` that Artifact files are spread over.
ARTIFACT_FANOUT = [f"{i:02x}" for i in range(256)]


def local_storage_path(storage, name: str) -> Path | None:
    """The local path of ``name`` in ``storage``, or ``None`` for a storage without local
    files (S3, ...)."""
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


def prepare_artifact_root(storage) -> Path | None:
    """With a local ``storage``, the artifact root directory: created and marked as a top
    directory, with its :data:`ARTIFACT_FANOUT` subdirectories created the first time (then
    a single ``stat`` per call). ``None`` for other storages."""
    root = local_storage_path(storage, ARTIFACT_ROOT)
    if root is not None and not (root / ARTIFACT_FANOUT[-1]).is_dir():
        create_subdirectories(prepare_fanout_directory(root), ARTIFACT_FANOUT)
    return root


def compute_digests(path: str | os.PathLike, algorithms: tuple[str, ...]) -> tuple[dict, int]:
    """Hash a local file with ``algorithms``; returns (digests, size)."""
    hashers = {name: hashlib.new(name) for name in algorithms}
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            size += len(chunk)
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: h.hexdigest() for name, h in hashers.items()}, size


class Artifact(models.Model):
    """A file in storage. Its bytes always agree with its digests and size.

    Create Artifacts with :meth:`from_validated_file`, which moves a complete, validated
    file into place atomically and is idempotent on sha256.
    """

    file = models.FileField(max_length=255)
    size = models.BigIntegerField()
    md5 = models.CharField(max_length=32, null=True, blank=True, db_index=True)
    sha1 = models.CharField(max_length=40, null=True, blank=True, db_index=True)
    sha224 = models.CharField(max_length=56, null=True, blank=True, db_index=True)
    sha256 = models.CharField(max_length=64, unique=True)
    sha384 = models.CharField(max_length=96, null=True, blank=True, db_index=True)
    sha512 = models.CharField(max_length=128, null=True, blank=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True)

    DIGEST_FIELDS = DIGEST_ALGORITHMS

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "artifact"
        verbose_name_plural = "artifacts"
        permissions = [("repair_artifacts", "Can repair artifacts")]

    def __str__(self) -> str:
        return f"sha256:{self.sha256[:16]}… ({self.size} bytes)"

    @property
    def digests(self) -> dict[str, str]:
        """The digests this Artifact has, by algorithm name."""
        return {name: getattr(self, name) for name in DIGEST_ALGORITHMS if getattr(self, name)}

    @classmethod
    def from_validated_file(
        cls,
        temp_path: str | os.PathLike,
        digests: dict[str, str] | None = None,
        size: int | None = None,
        *,
        storage=None,
    ) -> "Artifact":
        """Move a complete temporary file into storage and return its Artifact.

        ``digests`` must hold every allowed algorithm (they were computed while the file was
        written); when ``None`` they are computed here. If an Artifact with the same sha256
        already exists, the temporary file is removed and the existing Artifact returned, so
        concurrent callers never see an ``IntegrityError``. The file under the Artifact's path
        is only ever replaced atomically by a complete copy.
        """
        temp_path = Path(temp_path)
        if digests is None:
            digests, size = compute_digests(temp_path, app_settings().allowed_checksums)
        if size is None:
            size = temp_path.stat().st_size
        stored = cls.bulk_from_validated_files([(temp_path, digests, size)], storage=storage)
        return stored[digests["sha256"].lower()]

    @classmethod
    def bulk_from_validated_files(
        cls, files: list[tuple[str | os.PathLike, dict[str, str], int]], *, storage=None
    ) -> dict[str, "Artifact"]:
        """Store many validated temporary files at once; returns ``{sha256: Artifact}``.

        Each item is ``(temp_path, digests, size)``. Files whose sha256 is already stored are
        discarded. New files are recorded as pending, moved into place, then inserted in one
        transaction that also clears the pending records: a process killed in between leaves
        only pending records, whose files :meth:`cleanup_orphans` removes.
        """
        return cls._by_sha256(cls.store_validated_files(files, storage=storage))

    @classmethod
    def store_validated_files(
        cls, files: list[tuple[str | os.PathLike | bytes, dict[str, str], int]], *,
        storage=None, fsync_below: int = 0,
    ) -> list[str]:
        """Like :meth:`bulk_from_validated_files`, for bulk pipelines: returns the sha256s
        stored (new or already present) without loading Artifact objects.

        The source of an item is a temporary file or, for small files downloaded into memory,
        the content itself (``bytes``), which is written straight into storage. New files
        smaller than ``fsync_below`` bytes, and all content given as bytes, are flushed to disk
        once in place, before their rows are committed (the caller made larger temporary files
        durable already)."""
        from .artifact_batch import ArtifactBatch

        batch = ArtifactBatch.begin(files, storage=storage, fsync_below=fsync_below)
        batch.place_all()
        return batch.commit()

    @classmethod
    def _by_sha256(cls, sha256s) -> dict[str, "Artifact"]:
        found: dict[str, Artifact] = {}
        for chunk in chunks(list(sha256s)):
            found.update((a.sha256, a) for a in cls.objects.filter(sha256__in=chunk))
        return found

    @staticmethod
    def _checked_digests(digests: dict[str, str], allowed: tuple[str, ...], *,
                         only_sha256_required: bool = False) -> dict[str, str]:
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

    @classmethod
    def cleanup_orphans(cls, older_than: timedelta, *, storage=None) -> int:
        """Remove files left under Artifact paths by processes killed while storing them.

        Only pending records older than ``older_than`` are considered (younger ones may belong
        to a store in progress). Returns how many orphan files were removed.
        """
        from .task import PendingArtifactFile

        storage = storage or default_storage
        cutoff = timezone.now() - older_than
        removed = 0
        for pk in PendingArtifactFile.objects.filter(created__lt=cutoff).values_list("pk", flat=True):
            with transaction.atomic():
                pending = (PendingArtifactFile.objects.select_for_update()
                           .filter(pk=pk, created__lt=cutoff).first())
                if pending is None:
                    continue
                if not cls.objects.filter(sha256=pending.sha256).exists():
                    if storage.exists(pending.path):
                        storage.delete(pending.path)
                        removed += 1
                pending.delete()
        if removed:
            log.warning("removed %d orphan artifact file(s) left by an interrupted store", removed)
        return removed

    @staticmethod
    def _store(storage, source: Path | bytes, name: str) -> Path | None:
        """Put ``source`` (a temporary file, moved, or content) under ``name`` atomically;
        return the local path, if the storage is local (the caller makes it durable)."""
        local_destination = local_storage_path(storage, name)
        if local_destination is not None:
            if isinstance(source, bytes):
                write_local(source, local_destination)
            else:
                place_local(source, local_destination)
            return local_destination
        # Remote storages (S3, ...) upload atomically; replace any earlier copy.
        if storage.exists(name):
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
