"""Attempt: what a transport's one method answers, as a value.

A downloader's transport (``HttpDownloader``, ``FileDownloader``) does one thing:
``_open(url, resume)`` opens the byte stream of one attempt and yields an :class:`Attempt`
(status, headers, the body as an iterator of blocks, whether the body continues the bytes
already held, and what a later attempt can resume from). Everything else (retries,
mirrors, the writer, digests, size, restarts) is :class:`~.base.BaseDownloader`'s, which
never looks into a transport's response.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from multidict import CIMultiDictProxy

__all__ = ["Attempt", "ResumeFrom"]


@dataclass(frozen=True, slots=True)
class ResumeFrom:
    """Ask for the file's bytes from ``offset`` on, if it is still the file ``validator``
    (an ETag or a Last-Modified date, as the transport gave it) names."""

    offset: int
    validator: str


@dataclass(frozen=True, slots=True)
class Attempt:
    """One answer whose body is about to stream.

    ``final_url`` served it (after redirects); ``status`` is the HTTP status (``None`` for
    schemes without one); ``body`` yields its bytes in blocks, and raises
    :class:`~.exceptions.DownloadError` only. ``start`` is the file's offset where the body
    starts: ``0`` for the whole file, the offset of the :class:`ResumeFrom` asked for when the
    transport resumed, ``None`` for a part of the file that starts anywhere else (never
    usable). ``resume_validator`` is what a later attempt may resume from (``None``: it
    cannot), and ``length`` the number of bytes the body announced (``None``: unknown),
    checked once it ended.
    """

    final_url: str
    status: int | None
    headers: CIMultiDictProxy[str]
    body: AsyncIterator[bytes]
    start: int | None = 0
    resume_validator: str | None = None
    length: int | None = None

    @property
    def resumed(self) -> bool:
        """Whether the body continues bytes held from an earlier attempt."""
        return bool(self.start)
