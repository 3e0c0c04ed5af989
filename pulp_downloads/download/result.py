"""The values a download produces."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy


def _no_headers() -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict())


@dataclass
class DownloadResult:
    """What a finished, validated download produced.

    ``url`` is the URL asked for; ``final_url`` the one that served the bytes (a mirror, or
    the target of a redirect). ``path`` is the local file the default writer produced
    (``None`` for writers that keep no file); ``content`` the bytes, for writers that keep
    them in memory (:class:`~.writers.MemoryWriter`). ``digests`` maps each computed
    algorithm to its hex digest. ``attachment`` is whatever the caller gave to ``build()``.
    ``artifact`` is what the download's store (``build(..., store=...)``) returned when it
    took the result: the Django app's stores give the ``Artifact`` (``None`` when it is
    stored later, in a batch, or when the download had no store).
    """

    url: str
    final_url: str
    path: Path | None
    size: int
    digests: dict[str, str]
    headers: CIMultiDictProxy[str] = field(default_factory=_no_headers)
    status: int | None = None
    attachment: Any = None
    artifact: Any = None
    content: bytes | None = None


@dataclass(frozen=True)
class HeadResult:
    """Status and headers of a URL, fetched without its body."""

    url: str
    final_url: str
    status: int
    headers: CIMultiDictProxy[str]
    size: int | None
