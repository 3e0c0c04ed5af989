"""How a download ends for its caller and its events: a result, or a DownloadError.

:func:`reported` runs a download between its ``started`` event and exactly one of
``finished`` / ``failed``, and is the last boundary errors cross: whatever the download
raised reaches the caller as a :class:`DownloadError` (an unforeseen exception becomes one,
with the original as ``__cause__``). Only what must go through goes through unchanged
(:func:`must_propagate`): a real cancellation of the task, ``KeyboardInterrupt``,
``SystemExit``. A cancelled download still ends in a ``failed`` event, whose error is a
:class:`DownloadCanceled`, so that everything counting downloads in flight counts it out.
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .exceptions import CallbackError, DownloadCanceled, DownloadError, redact_url, unexpected
from .events import Download, DownloadEvents
from .result import DownloadResult

log = logging.getLogger(__name__)


def must_propagate(exc: BaseException) -> bool:
    """Whether ``exc`` must reach the caller unchanged: ``KeyboardInterrupt``,
    ``SystemExit``, ``GeneratorExit``, or a ``CancelledError`` of a task that is being
    cancelled. A ``CancelledError`` that some code raised while nobody cancelled the task
    (a callback's, say) is an ordinary failure."""
    return isinstance(exc, (KeyboardInterrupt, SystemExit, GeneratorExit)) or is_cancellation(exc)


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is the ``CancelledError`` of a cancel of the running task (not one
    that some code raised on its own)."""
    if not isinstance(exc, asyncio.CancelledError):
        return False
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


async def call_code(url: str, what: str, callback: Callable[..., object], *args: Any
                    ) -> object:
    """Call code given to a download (sync or async) and return what it returned (awaited);
    whatever it raises fails the download as a :class:`CallbackError` (the exception is its
    ``__cause__``), DownloadErrors and :func:`must_propagate` exceptions excepted."""
    try:
        outcome = callback(*args)
        if inspect.isawaitable(outcome):
            return await outcome
        return outcome
    except DownloadError:
        raise
    except BaseException as exc:  # noqa: BLE001 - code outside the library
        if must_propagate(exc):
            raise
        raise CallbackError(url, f"the {what} raised {type(exc).__name__}: {exc}") from exc


async def reported(downloader: Download, events: DownloadEvents | None,
                   download: Callable[[], Awaitable[DownloadResult]]) -> DownloadResult:
    """Run ``download()`` for ``downloader``, telling ``events`` (if any) that it started
    and how it ended; returns the result or raises a :class:`DownloadError`.

    A receiver of ``started`` or ``finished`` that raises fails the download
    (:class:`CallbackError`; after ``finished``, the result's file is removed, unless the
    downloader's store took it). A receiver of ``failed`` that raises is logged: the
    download's own error is what the caller sees.
    """
    url = downloader.url
    try:
        if events is not None:
            await call_code(url, "receiver of the started event", events.started, downloader)
        result = await download()
        if events is not None:
            try:
                await call_code(url, "receiver of the finished event", events.finished,
                                downloader, result)
            except CallbackError:
                if result.path is not None and downloader.store is None:
                    result.path.unlink(missing_ok=True)  # nobody will take the file now
                raise
    except BaseException as exc:
        if isinstance(exc, GeneratorExit):  # the coroutine is being closed: no await left
            raise
        stopping = must_propagate(exc)
        if isinstance(exc, DownloadError):
            error = exc
        elif stopping:
            error = DownloadCanceled(url, f"the download was cancelled ({type(exc).__name__})")
        else:
            log.error("download of %s raised %s", redact_url(url), type(exc).__name__, exc_info=exc)
            error = unexpected(url, exc)
        if events is not None:
            await _send_failed(events, downloader, error)
        if error is exc or stopping:
            raise
        raise error from exc
    return result


async def _send_failed(events: DownloadEvents, downloader: Download,
                       error: DownloadError) -> None:
    try:
        await events.failed(downloader, error)
    except BaseException as exc:  # noqa: BLE001 - the download's own error is what counts
        if must_propagate(exc):
            raise
        log.error("a receiver of the failed event raised for %s", redact_url(downloader.url),
                  exc_info=exc)
