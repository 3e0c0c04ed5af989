"""Artifact: one stored file, identified by its sha256 and described by its digests."""
from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, models, transaction

from pulp_downloads.conf import DIGEST_ALGORITHMS, app_settings

log = logging.getLogger(__name__)

_HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha224": 56, "sha256": 64, "sha384": 96, "sha512": 128}


class ArtifactError(ValueError):
    """Raised when an Artifact cannot be created from the given file and digests."""


def artifact_path(sha256: str) -> str:
    """The storage name of the file whose sha256 is ``sha256``: ``artifact/ab/cdef...``."""
    sha256 = sha256.lower()
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ArtifactError(f"not a sha256 hex digest: {sha256!r}")
    return f"artifact/{sha256[:2]}/{sha256[2:]}"


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


def _place_local(temp_path: Path, destination: Path) -> None:
    """Atomically move a complete file to ``destination`` (same filesystem: a rename)."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(temp_path, destination)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    # Different filesystems: copy next to the destination, make it durable, then rename.
    staging = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
    try:
        with open(temp_path, "rb") as src, open(staging, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(staging, destination)
    finally:
        staging.unlink(missing_ok=True)
    os.unlink(temp_path)


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
        storage = storage or default_storage
        temp_path = Path(temp_path)
        allowed = app_settings().allowed_checksums
        if digests is None:
            digests, size = compute_digests(temp_path, allowed)
        digests = {name.lower(): value.lower() for name, value in digests.items()}
        unknown = set(digests) - set(DIGEST_ALGORITHMS)
        if unknown:
            raise ArtifactError(f"unknown digest algorithm(s): {sorted(unknown)}")
        missing = [name for name in allowed if name not in digests]
        if missing:
            raise ArtifactError(f"missing digest(s) for allowed algorithm(s): {missing}")
        for name, value in digests.items():
            if len(value) != _HEX_LENGTHS[name]:
                raise ArtifactError(f"{name} digest has the wrong length: {value!r}")
        if size is None:
            size = temp_path.stat().st_size
        digests = {name: value for name, value in digests.items() if name in allowed}
        sha256 = digests["sha256"]

        existing = cls.objects.filter(sha256=sha256).first()
        if existing is not None:
            temp_path.unlink(missing_ok=True)
            return existing

        name = artifact_path(sha256)
        cls._store(storage, temp_path, name)
        try:
            with transaction.atomic():
                return cls.objects.create(file=name, size=size, **digests)
        except IntegrityError:
            # Another process created it first; its file is byte-identical to ours.
            return cls.objects.get(sha256=sha256)

    @staticmethod
    def _store(storage, temp_path: Path, name: str) -> None:
        try:
            local_destination = Path(storage.path(name))
        except NotImplementedError:
            local_destination = None
        if local_destination is not None:
            _place_local(temp_path, local_destination)
            return
        # Remote storages (S3, ...) upload atomically; replace any earlier copy.
        if storage.exists(name):
            storage.delete(name)
        with open(temp_path, "rb") as fh:
            stored = storage.save(name, File(fh, name=os.path.basename(name)))
        if stored != name:  # pragma: no cover - a storage that renamed despite the delete
            raise ArtifactError(f"storage saved {name!r} as {stored!r}")
        temp_path.unlink(missing_ok=True)
