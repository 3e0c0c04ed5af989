"""Storing: validated bytes -> durable file -> Artifact row.

:class:`ArtifactStore` is the one entry point: it takes finished downloads (or validated
files, or content in memory) and hides placement, durability, batching, the journal of files
being stored and the commit. Storage is Django's default storage: the local filesystem (the
fast path: files are moved or written in place and flushed) or any other storage (S3 through
django-storages, ...), which receives uploads.

Names are imported lazily: :mod:`.helper`'s child process imports this package with nothing
but the standard library.
"""
from __future__ import annotations

_EXPORTS = {
    "ArtifactStore": ".store",
    "StoreSession": ".session",
    "ArtifactError": ".paths",
    "artifact_path": ".paths",
    "ARTIFACT_ROOT": ".paths",
    "local_storage_path": ".paths",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)


__all__ = list(_EXPORTS)
