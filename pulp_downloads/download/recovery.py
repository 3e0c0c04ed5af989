"""Retries and mirrors: one download's attempts, until one succeeds or none is left.

:func:`with_recovery` runs an attempt on each candidate URL (the URL itself and its mirrors,
best first) with retries and backoff. No concurrency slot is held while waiting between
retries. Errors that no other try can mend end the download at once.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .context import DownloadContext
from .events import Download
from .exceptions import (
    AddressNotAllowed,
    CallbackError,
    DownloadError,
    DownloadTimeout,
    HttpError,
    IncompleteDownload,
    InvalidHeader,
    NetworkError,
    TLSError,
    UnsupportedDigest,
    UnsupportedURL,
    WriterError,
    redact_url,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Errors that end a download at once: trying again or elsewhere cannot help.
FATAL = (UnsupportedURL, UnsupportedDigest, WriterError, AddressNotAllowed, CallbackError,
         InvalidHeader)
#: Errors that say a server (not the file) is unwell; its base URL is then skipped a while.
SERVER_FAULTS = (NetworkError, DownloadTimeout, IncompleteDownload, HttpError)


async def with_recovery(
    context: DownloadContext,
    downloader: Download,
    attempt: Callable[[str], Awaitable[T]],
    before_next_candidate: Callable[[], Awaitable[None]] | None = None,
) -> T:
    """Run ``attempt`` on each candidate URL of ``downloader`` (through ``context``, its
    factory's) with retries; return the first success (``before_next_candidate()`` is
    awaited before moving to another URL).

    A candidate refused by the outbound address policy is not retried: when there are
    other candidates its base is marked unhealthy and the next one is tried, and the
    error that ends the download (if all fail) says why it was skipped. A download
    whose every candidate was refused raises the first :class:`AddressNotAllowed`.
    """
    policy = context.retry_policy
    candidates = await context.candidates(downloader.url)
    last_error: DownloadError | None = None
    refused: list[AddressNotAllowed] = []
    for index, candidate in enumerate(candidates):
        if index and before_next_candidate is not None:
            await before_next_candidate()
        error: DownloadError | None = None
        for retry in range(context.config.max_retries + 1):
            if error is not None:
                retry_after = error.retry_after if isinstance(error, HttpError) else None
                delay = policy.backoff(retry, retry_after)
                log.info("retrying %s in %.2fs (%s)", redact_url(candidate), delay, error)
                if context.on_retry is not None:
                    context.on_retry(downloader, error)
                await asyncio.sleep(delay)  # no concurrency slot is held here
            try:
                async with context.loop_state().slots:
                    await context.limiter.wait()
                    downloader.attempts += 1
                    outcome = await attempt(candidate)
            except AddressNotAllowed as exc:
                if len(candidates) == 1:
                    raise
                refused.append(exc)
                context.mirrors.mark_unhealthy(candidate, why=exc.message)
                break
            except FATAL:
                raise
            except DownloadError as exc:
                error = last_error = exc
                if exc.retryable:
                    continue
                break
            if index:
                log.info("%s served by mirror %s", redact_url(downloader.url),
                         redact_url(candidate))
            context.mirrors.mark_healthy(candidate)
            return outcome
        if len(candidates) > 1 and isinstance(error, SERVER_FAULTS) and (
            error.retryable or isinstance(error, TLSError)
        ):
            context.mirrors.mark_unhealthy(candidate)
    skipped = [f"{exc.url}: {exc.message}" for exc in refused]
    if last_error is None:  # every candidate was refused by the policy
        refused[0].add_skipped(skipped[1:])
        raise refused[0]
    last_error.add_skipped(skipped)
    raise last_error
