"""DownloadEvents: what a factory tells about each download's life, if anyone listens.

A factory's event sink (``DownloaderFactory(events=...)``, or the installed
:class:`~.factory.FactoryDefaults`) is told when each download started and how it ended:
``finished`` or ``failed``, exactly once, whatever ended it (see :mod:`.reporting`). The
Django app's sink (``pulp_downloads.signals.SignalEvents``) turns these into the
``download_started`` / ``download_finished`` / ``download_failed`` signals and counts them.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .exceptions import DownloadError
from .result import DownloadResult
from .sink import ArtifactSink

__all__ = ["Download", "DownloadEvents", "RetryHook", "retry_hook"]


class Download(Protocol):
    """A download as its events (and its retries) see it: a
    :class:`~.base.BaseDownloader`."""

    #: The URL asked for.
    url: str
    #: What the caller gave to ``build()``.
    attachment: Any
    #: Where the validated result goes (``None``: nowhere).
    store: ArtifactSink | None
    #: Requests made so far (attempts, across candidates).
    attempts: int


class DownloadEvents(Protocol):
    """An event sink. A receiver that raises from ``started`` or ``finished`` fails the
    download (:class:`~.exceptions.CallbackError`); one that raises from ``failed`` is
    logged. It may also have a plain ``retried(downloader, error)``, called before each
    retry with the error that caused it (see :func:`retry_hook`), which must not raise."""

    async def started(self, downloader: Download) -> None:
        """``downloader`` started (its ``url`` and ``attachment`` are set)."""
        ...

    async def finished(self, downloader: Download, result: DownloadResult) -> None:
        """``downloader`` validated (and stored, with a store) ``result``."""
        ...

    async def failed(self, downloader: Download, error: DownloadError) -> None:
        """``downloader`` ended with ``error`` (a ``DownloadCanceled`` when cancelled)."""
        ...


#: ``retried(downloader, error)``: a retry of ``downloader`` is about to wait, after ``error``.
RetryHook = Callable[[Download, DownloadError], None]


def retry_hook(events: object) -> RetryHook | None:
    """The optional ``retried`` method of an event sink (``None`` when it has none)."""
    hook = getattr(events, "retried", None)
    return hook if callable(hook) else None
