"""What a sync did, and how it fails."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class SyncSummary:
    """What a sync did. Counts are files (manifest lines) except ``downloaded`` and
    ``restored``, which count downloads: files with identical content are downloaded once."""

    listed: int = 0
    already_present: int = 0
    downloaded: int = 0
    failed: int = 0
    #: Of ``downloaded``: files of Artifacts already stored whose file was missing from
    #: storage (or had another size), fetched again and put back.
    restored: int = 0
    #: Files left for later under the ``on_demand`` and ``streamed`` policies.
    deferred: int = 0
    bytes_downloaded: int = 0
    failures: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class SyncError(Exception):
    """The sync failed; ``summary`` says what was done before (and which files failed)."""

    def __init__(self, message: str, summary: SyncSummary | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class PartialSyncError(SyncError):
    """Some files failed to download; the others were stored (``summary`` lists both)."""


class SyncCanceled(SyncError):
    """The sync was canceled (its progress callback raised this); ``summary`` says what was
    stored before it stopped."""
