"""Every error a caller of the download library can see.

All of them derive from :class:`DownloadError` and carry the ``url`` they concern (and, for
HTTP answers, the ``status``). aiohttp and OS exceptions are translated at one boundary
(:func:`translated`) so that nothing from below leaks upward. Messages never include
credentials: URLs are shown without their user-info part.
"""
from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from .addresses import AddressDenied


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part and without its query string values
    (signed URLs carry their tokens there): ``?sig=abc&x=1`` becomes ``?sig=***&x=***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = "&".join(
        f"{item.split('=', 1)[0]}=***" if "=" in item else item
        for item in parts.query.split("&")
    ) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class DownloadError(Exception):
    """Base class: a download of ``url`` failed."""

    #: Whether trying the same URL again may succeed.
    retryable: bool = False

    def __init__(self, url: str, message: str, *, status: int | None = None) -> None:
        self.url = redact_url(url)
        self.status = status
        self.message = message
        #: Why other candidates (mirrors) were skipped before this error ended the download:
        #: e.g. ``"http://m.test/repo/: connecting to ... is not allowed by the outbound
        #: address policy"``. Part of ``str(error)``, not of ``message``.
        self.skipped: tuple[str, ...] = ()
        super().__init__(f"{message} ({self.url})")

    def add_skipped(self, reasons: list[str]) -> None:
        """Record why other candidates were skipped; ``str(error)`` ends with them."""
        if reasons:
            self.skipped = (*self.skipped, *reasons)
            self.args = (f"{self.args[0]}; skipped {'; '.join(reasons)}",)


class UnsupportedURL(DownloadError):
    """The URL's scheme has no downloader, or a file:// URL lies outside the allowed roots."""


class UnsupportedDigest(DownloadError):
    """An expected digest names an algorithm that is unknown or not allowed by settings."""


class HttpError(DownloadError):
    """The server answered with an error status."""

    def __init__(
        self, url: str, status: int | None, reason: str = "", *, retry_after: float | None = None
    ) -> None:
        if status is None:
            text = reason or "not available"
        else:
            text = f"HTTP {status}{' ' + reason if reason else ''}"
        #: Seconds the server asked us to wait (``Retry-After``), if it said so.
        self.retry_after = retry_after
        super().__init__(url, text, status=status)

    @property
    def retryable(self) -> bool:  # type: ignore[override]
        # 508 Loop Detected: the request came back to its sender; asking again cannot help.
        return self.status is not None and (
            self.status in (408, 429) or (self.status >= 500 and self.status != 508))


class AddressNotAllowed(DownloadError):
    """The peer address (after DNS resolution) is denied by the outbound address policy.

    Never retried: another attempt would reach the same address."""


class NotFound(HttpError):
    """The server has no such file (404 or 410), or a file:// path does not exist."""


class NotAuthorized(HttpError):
    """The server (401, 403) or the proxy (407) refused the credentials."""


class NetworkError(DownloadError):
    """The connection could not be made or broke (DNS, refused, reset, TLS, proxy)."""

    retryable = True


class TLSError(NetworkError):
    """The TLS handshake failed (untrusted or mismatched certificate, bad client cert)."""

    retryable = False


class DownloadTimeout(DownloadError):
    """A connect, read or total timeout expired."""

    retryable = True


class IncompleteDownload(DownloadError):
    """The body ended before the announced Content-Length (a truncated transfer)."""

    retryable = True


class TokenError(DownloadError):
    """The token endpoint of a bearer challenge answered something that is not a token."""


class AnswerTooLarge(DownloadError):
    """An answer kept in memory is larger than its limit: a mirror list or Metalink
    document, or a body given to a :class:`~.writers.MemoryWriter` (a sync's manifest).
    Nothing past the limit is read. Not retried (mirrors are tried)."""

    def __init__(self, url: str, limit: int, what: str = "the answer") -> None:
        self.limit = limit
        super().__init__(url, f"{what} is larger than {size_text(limit)} ({limit} bytes), "
                              "the most read into memory")


def size_text(size: int) -> str:
    """``size`` bytes in words: ``"16 MiB"``, ``"64 KiB"``, ``"1000 bytes"``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


class InvalidHeader(DownloadError):
    """A header of the request could not be sent: its name is not an HTTP token, or its
    value holds a control character (CR, LF, NUL, ...). It comes from the remote's
    ``headers`` or credentials (e.g. a ``bearer_token`` ending in a newline); the message
    names the header, never its value."""


class InvalidResponse(DownloadError):
    """The server answered something that breaks HTTP: a malformed status line or header, a
    number out of range (``Content-Length``, ``Content-Range``), a redirect to a malformed
    URL. Not retried (mirrors are tried)."""


class DownloadCanceled(DownloadError):
    """The download was cancelled (its task was cancelled, or the process is stopping).

    Never raised to the caller of ``run()``, who sees the cancellation itself
    (``asyncio.CancelledError``): it is the ``error`` of the ``download_failed`` event that
    ends a cancelled download."""


class CallbackError(DownloadError):
    """Code given to the download (a progress callback, a signal receiver) raised; the
    download counts as failed."""


class WriterError(DownloadError):
    """The bytes could not be written (disk full, a stream consumer went away, ...)."""


class DownloadValidationError(DownloadError):
    """The downloaded bytes failed validation; nothing is kept."""


class DigestValidationError(DownloadValidationError):
    """A computed digest differs from the expected one."""

    def __init__(self, url: str, algorithm: str, expected: str, actual: str) -> None:
        self.algorithm, self.expected, self.actual = algorithm, expected, actual
        super().__init__(url, f"{algorithm} digest mismatch: expected {expected}, got {actual}")


class SizeValidationError(DownloadValidationError):
    """The number of bytes differs from the expected size."""

    def __init__(self, url: str, expected: int, actual: int, *, partial: bool = False) -> None:
        self.expected, self.actual = expected, actual
        more = "more than " if partial else ""
        super().__init__(url, f"size mismatch: expected {expected} bytes, got {more}{actual}")


@contextlib.contextmanager
def translated(url: str) -> Iterator[None]:
    """Translate aiohttp, TLS, timeout and OS errors raised inside into DownloadErrors."""
    try:
        yield
    except DownloadError:
        raise
    except AddressDenied as exc:
        raise AddressNotAllowed(url, str(exc)) from None
    except aiohttp.ClientHttpProxyError as exc:
        cls = NotAuthorized if exc.status == 407 else HttpError
        raise cls(url, exc.status, f"from proxy: {exc.message}") from None
    except aiohttp.ClientResponseError as exc:
        # Never raise_for_status() nor aiohttp's redirects here: the parser refused the answer.
        first_line = str(exc.message or exc).split("\n", 1)[0].rstrip(": ")
        raise InvalidResponse(url, f"malformed answer: {_short(first_line)}") from None
    except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
        raise TLSError(url, f"TLS error: {_short(exc)}") from None
    except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
        raise DownloadTimeout(url, "timed out") from None
    except aiohttp.ClientPayloadError as exc:
        raise IncompleteDownload(url, f"transfer interrupted: {_short(exc)}") from None
    except aiohttp.InvalidURL:
        raise UnsupportedURL(url, "invalid URL") from None
    except aiohttp.ClientConnectorError as exc:
        raise NetworkError(url, f"cannot connect to {_host_port(exc.host, exc.port)}: "
                                f"{_os_reason(exc.os_error)}") from None
    except aiohttp.ServerDisconnectedError:
        raise NetworkError(url, "the server closed the connection without answering") from None
    except aiohttp.ClientOSError as exc:
        raise NetworkError(url, f"connection failed: {_os_reason(exc)}") from None
    except ConnectionError as exc:
        raise NetworkError(url, f"connection failed: {_os_reason(exc)}") from None
    except aiohttp.ClientError as exc:
        raise NetworkError(url, f"connection failed: {_short(exc)}") from None


def _host_port(host: str, port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


#: Plain words for the errors people meet most.
_OS_REASONS = {
    ConnectionRefusedError: "connection refused (nothing listens on that port)",
    ConnectionResetError: "connection reset by the server",
    ConnectionAbortedError: "connection aborted",
    TimeoutError: "timed out",
}


def _os_reason(error: BaseException) -> str:
    """An OS-level connection error in words, without aiohttp's wrapping."""
    import socket

    for kind, reason in _OS_REASONS.items():
        if isinstance(error, kind):
            return reason
    if isinstance(error, socket.gaierror):
        return f"host name not found ({error.strerror or error})"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror[0].lower() + error.strerror[1:]
    return _short(error)


def _for_status(status: int) -> type[HttpError]:
    if status in (404, 410):
        return NotFound
    if status in (401, 403, 407):
        return NotAuthorized
    return HttpError


def http_error(
    url: str, status: int, reason: str = "", *, retry_after: float | None = None
) -> HttpError:
    """The HttpError subclass for ``status``."""
    return _for_status(status)(url, status, reason, retry_after=retry_after)


def unexpected(url: str, exc: BaseException) -> DownloadError:
    """A DownloadError for an exception the library did not foresee (its ``__cause__``)."""
    error = DownloadError(url, f"unexpected {type(exc).__name__}: {_short(exc)}")
    error.__cause__ = exc
    return error


def _short(exc: BaseException | str) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."
