"""BaseDownloader: the streaming loop shared by every scheme.

A downloader fetches one URL. It streams the bytes into its writer and its digester at the
same time, validates size, digests and any extra validators, and returns a
:class:`DownloadResult`. Recoverable failures are retried with backoff (no concurrency slot is
held while waiting), then the URL's mirrors are tried. Subclasses only open a byte stream for
one attempt (:meth:`_attempt`) and answer HEAD (:meth:`_head_attempt`).
"""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from asgiref.sync import async_to_sync

from .context import DownloadContext
from .defaults import BLOCK_SIZE
from .digests import Digester
from .ledger import ByteLedger
from .pipeline import BlockPipeline
from .exceptions import (
    AddressNotAllowed,
    CallbackError,
    DigestValidationError,
    DownloadError,
    DownloadTimeout,
    DownloadValidationError,
    HttpError,
    IncompleteDownload,
    InvalidHeader,
    NetworkError,
    SizeValidationError,
    TLSError,
    UnsupportedDigest,
    UnsupportedURL,
    WriterError,
    redact_url,
    unexpected,
)
from .reporting import call_code, must_propagate, reported
from .result import DownloadResult, HeadResult
from .writers import CannotRestart, TempFileWriter, Writer

log = logging.getLogger(__name__)

Validator = Callable[[DownloadResult], Any]
Progress = Callable[[int], Any]

#: Errors that end a download at once: trying again or elsewhere cannot help.
_FATAL = (UnsupportedURL, UnsupportedDigest, WriterError, AddressNotAllowed, CallbackError,
          InvalidHeader)
#: Errors that say a server (not the file) is unwell; its base URL is then skipped a while.
_SERVER_FAULTS = (NetworkError, DownloadTimeout, IncompleteDownload, HttpError)


class BaseDownloader:
    """Downloads one URL through a shared :class:`DownloadContext`.

    Build downloaders with ``DownloaderFactory.build()`` rather than directly. Use
    ``await downloader.run()`` from async code and ``downloader.fetch()`` from sync code;
    ``await downloader.head()`` fetches status and headers only. A downloader runs once.
    """

    def __init__(
        self,
        url: str,
        context: DownloadContext,
        *,
        expected_digests: dict[str, str] | None = None,
        expected_size: int | None = None,
        validators: Iterable[Validator] = (),
        writer: Writer | None = None,
        attachment: Any = None,
        progress: Progress | None = None,
        save_artifact: bool = False,
        on_headers: Callable[[int | None, Any], Any] | None = None,
        digests: Iterable[str] | None = None,
    ) -> None:
        self.url = url
        self.context = context
        allowed = context.settings.allowed_checksums
        self.expected_digests: dict[str, str] = {}
        for algorithm, value in (expected_digests or {}).items():
            name = str(algorithm).lower()
            if name not in hashlib.algorithms_available:
                raise UnsupportedDigest(url, f"unknown digest algorithm {algorithm!r}")
            if name not in allowed:
                raise UnsupportedDigest(
                    url, f"digest algorithm {name!r} is not allowed (allowed: {', '.join(allowed)})"
                )
            self.expected_digests[name] = str(value).lower()
        if digests is None:
            self.algorithms = tuple(allowed)
        else:
            self.algorithms = tuple(name.lower() for name in digests)
            refused = [name for name in self.algorithms if name not in allowed]
            if refused:
                raise UnsupportedDigest(url, f"digest algorithm(s) {refused} are not allowed")
            missing = [name for name in self.expected_digests if name not in self.algorithms]
            if missing:
                raise UnsupportedDigest(
                    url, f"expected digest(s) {missing} would not be computed (digests=...)")
        if expected_size is not None and (not isinstance(expected_size, int) or expected_size < 0):
            raise DownloadError(url, f"expected_size must be a non-negative int, got {expected_size!r}")
        self.expected_size = expected_size
        self.validators = list(validators)
        self.writer = writer
        self.attachment = attachment
        self.progress = progress
        self.save_artifact = save_artifact
        self.on_headers = on_headers
        #: The URL (primary or mirror, after redirects) that served the bytes.
        self.final_url: str | None = None
        #: How many requests this downloader made (attempts, across candidates).
        self.attempts = 0
        #: The furthest byte offset reported to ``progress``: a retried, resumed or restarted
        #: attempt reports only bytes past it, so each byte is reported once.
        self._progress_mark = 0

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # --- public API ------------------------------------------------------------------------
    async def run(self) -> DownloadResult:
        """Download, validate and return the result; raises a :class:`DownloadError` (see
        :func:`.reporting.reported`: a cancellation goes through as itself)."""
        return await reported(self, self._download)

    def fetch(self) -> DownloadResult:
        """``run()`` for sync code (management commands, views, worker threads)."""
        return async_to_sync(self._from_sync)(self.run)

    async def head(self) -> HeadResult:
        """Status and headers of the URL without its body (mirrors and retries apply).

        With ``expected_size`` set, a Content-Length that disagrees raises
        :class:`SizeValidationError` at once.
        """
        try:
            result = await self._with_recovery(self._head_attempt)
        except DownloadError:
            raise
        except BaseException as exc:
            if must_propagate(exc):
                raise
            raise unexpected(self.url, exc) from exc
        if (
            self.expected_size is not None
            and result.size is not None
            and result.size != self.expected_size
        ):
            raise SizeValidationError(result.final_url, self.expected_size, result.size)
        return result

    def fetch_head(self) -> HeadResult:
        """``head()`` for sync code."""
        return async_to_sync(self._from_sync)(self.head)

    # --- the download ----------------------------------------------------------------------
    async def _from_sync(self, coroutine_function):
        async with self.context.for_sync_caller():
            return await coroutine_function()

    def _default_writer(self) -> Writer:
        settings = self.context.settings
        return TempFileWriter(settings.working_directory, fsync=settings.fsync,
                              executor=self.context.executor)

    async def _download(self) -> DownloadResult:
        writer = self.writer if self.writer is not None else self._default_writer()
        ledger = ByteLedger(Digester(self.algorithms, self.context.settings.hasher_factory))
        try:
            try:
                await writer.open()
                resumed = getattr(writer, "resumed", None)
                if resumed is not None:
                    await self._resume_from(writer, ledger, resumed)
                meta = await self._with_recovery(
                    lambda url: self._attempt_into(url, writer, ledger),
                    before_next_candidate=lambda: self._restart(writer, ledger),
                )
                await writer.finish()
            except OSError as exc:
                raise WriterError(self.url, f"could not write the download: {exc.strerror or exc}") from None
            written = getattr(writer, "size", None)
            if isinstance(written, int) and written != ledger.offset:
                raise WriterError(self.url, f"the writer holds {written} bytes, the digests "
                                            f"cover {ledger.offset}")
            result = DownloadResult(
                url=self.url,
                final_url=meta["final_url"],
                path=writer.path,
                size=ledger.offset,
                digests=ledger.digester.hexdigests(),
                headers=meta["headers"],
                status=meta["status"],
                attachment=self.attachment,
                content=writer.content,
            )
            await self._validate(result)
        except BaseException as exc:
            if self._worth_keeping(writer, exc, ledger):
                await asyncio.shield(writer.keep())
            else:
                await asyncio.shield(writer.abort())
            raise
        return result

    async def _resume_from(self, writer: Writer, ledger: ByteLedger, resumed) -> None:
        """Continue what an earlier run left in a resumable writer: its bytes are hashed
        again (and counted as progress), and the first request asks for the rest."""
        def feed() -> int:
            read = 0
            with open(writer.path, "rb") as fh:
                left = resumed.size
                while left and (block := fh.read(min(left, BLOCK_SIZE))):
                    ledger.digester.update(block)
                    left -= len(block)
                    read += len(block)
            return read

        read = await asyncio.get_running_loop().run_in_executor(self.context.executor, feed)
        ledger.settle(read)  # the file's bytes are the writer's, and now every digest's
        if read != resumed.size:  # the file was shorter than its journal said
            await self._restart(writer, ledger)
            return
        self._resume_validator = resumed.validator
        log.info("resuming %s at byte %d", redact_url(self.url), resumed.size)
        if self.progress is not None and resumed.size > self._progress_mark:
            new, self._progress_mark = resumed.size - self._progress_mark, resumed.size
            await self._call_back(self.progress, "progress callback", new)

    def _worth_keeping(self, writer: Writer, error: BaseException, ledger: ByteLedger) -> bool:
        """Keep a resumable writer's bytes after ``error``: not when they proved wrong, nor
        when the writer and the digests may disagree."""
        return (hasattr(writer, "keep") and ledger.offset > 0 and not ledger.in_doubt
                and bool(getattr(self, "_resume_validator", None))
                and not isinstance(error, DownloadValidationError))

    async def _restart(self, writer: Writer, ledger: ByteLedger) -> None:
        """Start the download again from byte 0 (writer and ledger together)."""
        if ledger.offset == 0 and not ledger.in_doubt:
            return
        try:
            await writer.reset()
        except CannotRestart as exc:
            raise WriterError(self.url, f"cannot start the download again: {exc}") from None
        ledger.restart()

    async def _attempt_into(self, url: str, writer: Writer, ledger: ByteLedger) -> dict:
        if ledger.in_doubt:  # an earlier attempt ended with the consumers in disagreement
            await self._restart(writer, ledger)
        began, before = self.context.mirrors.clock(), ledger.offset
        meta = await self._attempt(url, writer, ledger)
        self.context.mirrors.record(url, ledger.offset - before, self.context.mirrors.clock() - began)
        if self.expected_size is not None and ledger.offset != self.expected_size:
            raise SizeValidationError(url, self.expected_size, ledger.offset)
        if self.expected_digests:
            actual = ledger.digester.hexdigests()
            for algorithm, expected in self.expected_digests.items():
                if actual[algorithm] != expected:
                    raise DigestValidationError(url, algorithm, expected, actual[algorithm])
        return meta

    async def _validate(self, result: DownloadResult) -> None:
        for validator in self.validators:
            try:
                outcome = validator(result)
                if inspect.isawaitable(outcome):
                    await outcome
            except DownloadError:
                raise
            except BaseException as exc:  # a validator said no
                if must_propagate(exc):
                    raise
                raise DownloadValidationError(
                    result.final_url, f"validator {getattr(validator, '__name__', validator)!r} failed: {exc}"
                ) from None

    async def _with_recovery(
        self,
        attempt: Callable[[str], Awaitable[Any]],
        before_next_candidate: Callable[[], Awaitable[None]] | None = None,
    ) -> Any:
        """Run ``attempt`` on each candidate URL with retries; return the first success.

        A candidate refused by the outbound address policy is not retried: when there are
        other candidates its base is marked unhealthy and the next one is tried, and the
        error that ends the download (if all fail) says why it was skipped. A download
        whose every candidate was refused raises the first :class:`AddressNotAllowed`.
        """
        context = self.context
        policy = context.retry_policy
        candidates = await context.candidates(self.url)
        last_error: DownloadError | None = None
        refused: list[AddressNotAllowed] = []
        for index, candidate in enumerate(candidates):
            if index and before_next_candidate is not None:
                await before_next_candidate()
            error: DownloadError | None = None
            for retry in range(context.config.max_retries + 1):
                if retry:
                    retry_after = getattr(error, "retry_after", None)
                    delay = policy.backoff(retry, retry_after)
                    log.info("retrying %s in %.2fs (%s)", redact_url(candidate), delay, error)
                    retried = getattr(context.events, "retried", None)
                    if retried is not None:
                        retried(self, error)
                    await asyncio.sleep(delay)  # no concurrency slot is held here
                try:
                    async with context.loop_state().slots:
                        await context.limiter.wait()
                        self.attempts += 1
                        outcome = await attempt(candidate)
                except AddressNotAllowed as exc:
                    if len(candidates) == 1:
                        raise
                    refused.append(exc)
                    context.mirrors.mark_unhealthy(candidate, why=exc.message)
                    break
                except _FATAL:
                    raise
                except DownloadError as exc:
                    error = last_error = exc
                    if exc.retryable:
                        continue
                    break
                if index:
                    log.info("%s served by mirror %s", redact_url(self.url), redact_url(candidate))
                context.mirrors.mark_healthy(candidate)
                return outcome
            if len(candidates) > 1 and isinstance(error, _SERVER_FAULTS) and (
                error.retryable or isinstance(error, TLSError)
            ):
                context.mirrors.mark_unhealthy(candidate)
        skipped = [f"{exc.url}: {exc.message}" for exc in refused]
        if last_error is None:  # every candidate was refused by the policy
            refused[0].add_skipped(skipped[1:])
            raise refused[0]
        last_error.add_skipped(skipped)
        raise last_error

    async def _consume(
        self, blocks: AsyncIterator[bytes], writer: Writer, ledger: ByteLedger, url: str
    ) -> None:
        """Feed ``blocks`` to the writer and the digests (the pipeline settles ``ledger``)."""
        pipeline = BlockPipeline(url, ledger, writer, self.context.executor)
        position = ledger.offset  # bytes received: where this attempt started, plus its own
        bandwidth = self.context.bandwidth
        try:
            async for block in blocks:
                if bandwidth:
                    await bandwidth.take(len(block))
                if self.expected_size is not None and position + len(block) > self.expected_size:
                    raise SizeValidationError(
                        url, self.expected_size, position + len(block), partial=True
                    )
                await pipeline.feed(block)
                position += len(block)
                if self.progress is not None and position > self._progress_mark:
                    new = position - self._progress_mark
                    self._progress_mark = position
                    await self._call_back(self.progress, "progress callback", new)
            await pipeline.close()
        except BaseException:
            await asyncio.shield(pipeline.abort())
            raise

    async def _headers_received(self, status: int | None, headers) -> None:
        """Tell ``on_headers`` (once) that the body about to stream comes with ``headers``."""
        if self.on_headers is not None:
            callback, self.on_headers = self.on_headers, None
            await self._call_back(callback, "on_headers callback", status, headers)

    async def _call_back(self, callback, what: str, *args) -> None:
        """Call code given to this download; its errors fail the download (CallbackError)."""
        await call_code(self.url, what, callback, *args)

    # --- for subclasses --------------------------------------------------------------------
    async def _attempt(self, url: str, writer: Writer, ledger: ByteLedger) -> dict:
        """One attempt: stream ``url`` into the writer and the digests with
        :meth:`_consume` (continuing at ``ledger.offset`` when possible, else calling
        ``self._restart``), and return
        ``{"final_url", "headers", "status"}``. Raise DownloadErrors only."""
        raise UnsupportedURL(url, f"{type(self).__name__} cannot download")

    async def _head_attempt(self, url: str) -> HeadResult:
        """One HEAD attempt on ``url``."""
        raise UnsupportedURL(url, f"{type(self).__name__} cannot answer HEAD")

