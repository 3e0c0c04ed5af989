"""Where Artifact files live in storage."""
from __future__ import annotations

import re
from pathlib import Path

from django.core.files.storage import FileSystemStorage

from .directories import create_subdirectories, prepare_fanout_directory

#: The storage directory holding every Artifact's file.
ARTIFACT_ROOT = "artifact"
#: The subdirectories of ``ARTIFACT_ROOT`` that Artifact files are spread over.
ARTIFACT_FANOUT = [f"{i:02x}" for i in range(256)]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class ArtifactError(ValueError):
    """Files and digests that cannot become an Artifact, or a store that went wrong."""


def artifact_path(sha256: str) -> str:
    """The storage name of the file whose sha256 is ``sha256``: ``artifact/ab/cdef...``."""
    sha256 = sha256.lower()
    if not _SHA256_HEX.fullmatch(sha256):
        raise ArtifactError(f"not a sha256 hex digest: {sha256!r}")
    return f"{ARTIFACT_ROOT}/{sha256[:2]}/{sha256[2:]}"


def is_local(storage) -> bool:
    """Whether ``storage`` keeps its files in a local directory. Decided by the backend's
    type (a ``FileSystemStorage``), never by probing it: other storages may answer
    ``path()`` without their files being there."""
    return isinstance(storage, FileSystemStorage)


def local_storage_path(storage, name: str) -> Path | None:
    """The local path of ``name`` in ``storage``, or ``None`` for a storage without local
    files (S3, ...)."""
    return Path(storage.path(name)) if is_local(storage) else None


def prepare_artifact_root(storage) -> Path | None:
    """With a local ``storage``, the artifact root directory: created and marked as a top
    directory, with its :data:`ARTIFACT_FANOUT` subdirectories created the first time (then
    a single ``stat`` per call). ``None`` for other storages."""
    root = local_storage_path(storage, ARTIFACT_ROOT)
    if root is not None and not (root / ARTIFACT_FANOUT[-1]).is_dir():
        create_subdirectories(prepare_fanout_directory(root), ARTIFACT_FANOUT)
    return root
