"""BaseDownloader: the streaming loop shared by every scheme.

A downloader fetches one URL. It streams the bytes into its writer and its digester at the
same time, validates size, digests and any extra validators, hands the result to its store
(if it has one, see :mod:`.sink`) and returns a :class:`DownloadResult`. Recoverable
failures are retried with backoff (no concurrency slot is held while waiting), then the
URL's mirrors are tried (:mod:`.recovery`). A subclass is a transport: it only opens the
byte stream of one attempt (:meth:`~BaseDownloader._open`, which yields an
:class:`~.attempts.Attempt`), answers HEAD (:meth:`~BaseDownloader._head_attempt`), and says
whether it can resume (:attr:`~BaseDownloader.supports_resume`).
"""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, ClassVar, TypeVar

from asgiref.sync import async_to_sync
from multidict import CIMultiDictProxy

from .attempts import Attempt, ResumeFrom
from .context import DownloadContext
from .defaults import BLOCK_SIZE
from .digests import Digester
from .exceptions import (
    CallbackError,
    DigestValidationError,
    DownloadError,
    DownloadValidationError,
    IncompleteDownload,
    SizeValidationError,
    UnsupportedDigest,
    UnsupportedURL,
    WriterError,
    redact_url,
    unexpected,
)
from .ledger import ByteLedger
from .partials import Partial, ResumableWriter
from .pipeline import BlockPipeline
from .recovery import with_recovery
from .reporting import call_code, must_propagate, reported
from .result import DownloadResult, HeadResult
from .sink import ArtifactSink, SinkRequest, WriterChoice
from .writers import CannotRestart, TempFileWriter, Writer

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``validator(result)``, sync or async; raising fails the download.
Validator = Callable[[DownloadResult], object]
#: ``progress(new_bytes)``, sync or async.
Progress = Callable[[int], object]
#: ``on_headers(status, headers)``, sync or async: the answer whose body is about to stream.
OnHeaders = Callable[[int | None, CIMultiDictProxy[str]], object]


class BaseDownloader:
    """Downloads one URL through a shared :class:`DownloadContext`.

    Build downloaders with ``DownloaderFactory.build()`` rather than directly. Use
    ``await downloader.run()`` from async code and ``downloader.fetch()`` from sync code;
    ``await downloader.head()`` fetches status and headers only. A downloader runs once.
    """

    #: Whether this transport can continue a broken body where it stopped (``Range``): it
    #: is then given a :class:`~.attempts.ResumeFrom` when bytes are held.
    supports_resume: ClassVar[bool] = False

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
        store: ArtifactSink | None = None,
        on_headers: OnHeaders | None = None,
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
        if expected_size is not None and (not isinstance(expected_size, int) or expected_size < 0):
            raise DownloadError(url, f"expected_size must be a non-negative int, got {expected_size!r}")
        self.expected_size = expected_size
        #: Where the validated result goes (see :mod:`.sink`); ``None``: nowhere.
        self.store = store
        if writer is None and store is not None:
            choice = self._ask_store(store)
            if choice is not None:
                writer = choice.writer
                digests = choice.digests if digests is None else digests
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
        self.validators = list(validators)
        self.writer = writer
        self.attachment = attachment
        self.progress = progress
        self.on_headers = on_headers
        #: The URL (primary or mirror, after redirects) that served the bytes.
        self.final_url: str | None = None
        #: How many requests this downloader made (attempts, across candidates).
        self.attempts = 0
        #: The furthest byte offset reported to ``progress``: a retried, resumed or restarted
        #: attempt reports only bytes past it, so each byte is reported once.
        self._progress_mark = 0
        #: What the bytes held can be resumed from (``None``: a retry starts at byte 0).
        self._resume_validator: str | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    # --- public API ------------------------------------------------------------------------
    async def run(self) -> DownloadResult:
        """Download, validate, store (with a ``store``) and return the result; raises a
        :class:`DownloadError` (see :func:`.reporting.reported`: a cancellation goes through
        as itself)."""
        return await reported(self, self.context.events, self._download)

    def fetch(self) -> DownloadResult:
        """``run()`` for sync code (management commands, views, worker threads)."""
        return async_to_sync(self._from_sync)(self.run)

    async def head(self) -> HeadResult:
        """Status and headers of the URL without its body (mirrors and retries apply).

        With ``expected_size`` set, a Content-Length that disagrees raises
        :class:`SizeValidationError` at once.
        """
        try:
            result = await with_recovery(self.context, self, self._head_attempt)
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
    async def _from_sync(self, coroutine_function: Callable[[], Awaitable[T]]) -> T:
        async with self.context.for_sync_caller():
            return await coroutine_function()

    def _ask_store(self, store: ArtifactSink) -> WriterChoice | None:
        """The store's :class:`~.sink.WriterChoice` for this download (its errors fail the
        build with a :class:`CallbackError`)."""
        request = SinkRequest(self.url, self.expected_size, dict(self.expected_digests),
                              self.context.settings.working_directory)
        try:
            return store.writer_for(request)
        except DownloadError:
            raise
        except Exception as exc:
            raise CallbackError(self.url, f"the store raised {type(exc).__name__} choosing "
                                          f"a writer: {exc}") from exc

    def _default_writer(self) -> Writer:
        settings = self.context.settings
        return TempFileWriter(settings.working_directory, fsync=settings.fsync,
                              executor=self.context.executor)

    async def _download(self) -> DownloadResult:
        writer = self.writer if self.writer is not None else self._default_writer()
        ledger = ByteLedger(Digester(self.algorithms, self.context.settings.hasher_factory))
        finished = False
        try:
            try:
                await writer.open()
                if isinstance(writer, ResumableWriter) and writer.resumed is not None:
                    await self._resume_from(writer, ledger, writer.resumed)
                attempt = await with_recovery(
                    self.context, self, lambda url: self._attempt_into(url, writer, ledger),
                    before_next_candidate=lambda: self._restart(writer, ledger),
                )
                await writer.finish()
                finished = True
            except OSError as exc:
                raise WriterError(self.url, f"could not write the download: {exc.strerror or exc}") from None
            if writer.size is not None and writer.size != ledger.offset:
                raise WriterError(self.url, f"the writer holds {writer.size} bytes, the digests "
                                            f"cover {ledger.offset}")
            result = DownloadResult(
                url=self.url,
                final_url=attempt.final_url,
                path=writer.path,
                size=ledger.offset,
                digests=ledger.digester.hexdigests(),
                headers=attempt.headers,
                status=attempt.status,
                attachment=self.attachment,
                content=writer.content,
            )
            await self._validate(result)
            if self.store is not None:  # from here on, the bytes are the store's
                result.artifact = await call_code(self.url, "store", self.store.accept, result)
        except BaseException as exc:
            keeper = None if finished else self._worth_keeping(writer, exc, ledger)
            if keeper is not None:
                await asyncio.shield(keeper.keep())
            else:
                await asyncio.shield(writer.abort())
            raise
        return result

    async def _resume_from(self, writer: Writer, ledger: ByteLedger, resumed: Partial) -> None:
        """Continue what an earlier run left in a resumable writer: its bytes are hashed
        again (and counted as progress), and the first request asks for the rest."""
        path = writer.path

        def feed() -> int:
            read = 0
            if path is None:
                return read
            with open(path, "rb") as fh:
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

    def _worth_keeping(self, writer: Writer, error: BaseException, ledger: ByteLedger
                       ) -> ResumableWriter | None:
        """The resumable writer whose bytes to keep after ``error`` (``None``: abort): not
        when they proved wrong, nor when the writer and the digests may disagree."""
        if (isinstance(writer, ResumableWriter) and ledger.offset > 0 and not ledger.in_doubt
                and self._resume_validator
                and not isinstance(error, DownloadValidationError)):
            return writer
        return None

    async def _restart(self, writer: Writer, ledger: ByteLedger) -> None:
        """Start the download again from byte 0 (writer and ledger together)."""
        if ledger.offset == 0 and not ledger.in_doubt:
            return
        try:
            await writer.reset()
        except CannotRestart as exc:
            raise WriterError(self.url, f"cannot start the download again: {exc}") from None
        ledger.restart()

    async def _attempt_into(self, url: str, writer: Writer, ledger: ByteLedger) -> Attempt:
        """One attempt on ``url``: open it (asking to resume at ``ledger.offset`` when the
        transport can and the bytes held have a validator), start again from byte 0 unless
        it resumed, stream its body into the writer and the digests, and check what came."""
        if ledger.in_doubt:  # an earlier attempt ended with the consumers in disagreement
            await self._restart(writer, ledger)
        resume = (ResumeFrom(ledger.offset, self._resume_validator)
                  if self.supports_resume and ledger.offset and self._resume_validator
                  else None)
        began, before = self.context.mirrors.clock(), ledger.offset
        async with self._open(url, resume) as attempt:
            if not (attempt.resumed and attempt.start == ledger.offset):
                await self._restart(writer, ledger)
                if attempt.start != 0:
                    raise IncompleteDownload(url, (
                        "the server answered a resume with bytes from another offset"
                        if resume is not None else
                        "the server answered with a part of the file when the whole was "
                        "asked for"))
            self._resume_validator = attempt.resume_validator
            if self.supports_resume and not attempt.resumed and isinstance(writer,
                                                                           ResumableWriter):
                writer.journal(url, attempt.resume_validator)
            await self._headers_received(attempt.status, attempt.headers)
            start = ledger.offset
            await self._consume(attempt.body, writer, ledger, url)
            if attempt.length is not None and ledger.offset - start != attempt.length:
                raise IncompleteDownload(
                    url, f"body ended after {ledger.offset - start} of {attempt.length} bytes")
            self.final_url = attempt.final_url
        self.context.mirrors.record(url, ledger.offset - before, self.context.mirrors.clock() - began)
        if self.expected_size is not None and ledger.offset != self.expected_size:
            raise SizeValidationError(url, self.expected_size, ledger.offset)
        if self.expected_digests:
            actual = ledger.digester.hexdigests()
            for algorithm, expected in self.expected_digests.items():
                if actual[algorithm] != expected:
                    raise DigestValidationError(url, algorithm, expected, actual[algorithm])
        return attempt

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

    async def _headers_received(self, status: int | None, headers: CIMultiDictProxy[str]
                                ) -> None:
        """Tell ``on_headers`` (once) that the body about to stream comes with ``headers``."""
        if self.on_headers is not None:
            callback, self.on_headers = self.on_headers, None
            await self._call_back(callback, "on_headers callback", status, headers)

    async def _call_back(self, callback: Callable[..., object], what: str, *args: Any) -> None:
        """Call code given to this download; its errors fail the download (CallbackError)."""
        await call_code(self.url, what, callback, *args)

    # --- the transport: for subclasses -----------------------------------------------------
    def _open(self, url: str, resume: ResumeFrom | None
              ) -> AbstractAsyncContextManager[Attempt]:
        """Open one attempt on ``url`` and yield its :class:`~.attempts.Attempt`; the body
        is read inside the ``async with`` and the answer released after it. ``resume`` (only
        given when :attr:`supports_resume`) asks for the bytes from its offset on. Raise
        :class:`DownloadError`\\ s only, translating the errors raised inside too."""
        raise UnsupportedURL(url, f"{type(self).__name__} cannot download")

    async def _head_attempt(self, url: str) -> HeadResult:
        """One HEAD attempt on ``url``."""
        raise UnsupportedURL(url, f"{type(self).__name__} cannot answer HEAD")
