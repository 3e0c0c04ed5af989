"""Syncing a Remote: manifest -> plan -> downloads -> ArtifactStore.

``sync_remote(remote)`` (sync code) and ``await async_sync_remote(remote)`` run a
:class:`SyncRun`; see :func:`async_sync_remote`.
"""
from .manifest import ManifestEntry, ManifestError, parse_manifest
from .progress import ProgressCallback, SyncProgress
from .run import SyncRun, async_sync_remote, sync_remote
from .summary import PartialSyncError, SyncCanceled, SyncError, SyncSummary

__all__ = [
    "ManifestEntry", "ManifestError", "PartialSyncError", "ProgressCallback",
    "SyncCanceled", "SyncError", "SyncProgress", "SyncRun", "SyncSummary", "async_sync_remote",
    "parse_manifest", "sync_remote",
]
