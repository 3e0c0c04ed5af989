"""HttpDownloader: http:// and https:// through the factory's aiohttp session."""
from __future__ import annotations

import contextlib
import email.utils
import re
import time
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDictProxy

from .attempts import Attempt, ResumeFrom
from .answers import read_up_to
from .auth import AuthRequest, AuthResponse
from .base import BaseDownloader
from .defaults import BLOCK_SIZE
from .exceptions import http_error, translated
from .headers import has_control_characters
from .result import HeadResult


#: ASCII digits only, and no more than a byte offset can have (``int()`` of thousands of
#: digits raises; ``\d`` would match other scripts' digits too).
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,20})-([0-9]{1,20})/([0-9]{1,20}|\*)")
_DELTA_SECONDS = re.compile(r"[0-9]+")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` when
    it says neither. A huge number of seconds is ``inf`` (the retry policy caps the wait)."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)  # no digit limit, unlike int(); too many digits make inf
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when is None:
            return None
        return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


async def response_blocks(response: aiohttp.ClientResponse,
                          piece: int | None = None) -> AsyncIterator[bytes]:
    """The body in blocks of up to :data:`BLOCK_SIZE`: whatever has arrived, without waiting
    for a block to fill (so the first bytes are passed on at once). Under a bandwidth cap,
    in blocks of at most ``piece`` bytes, so the connection is read a little at a time."""
    content = response.content
    if piece is not None:
        while True:
            data = await content.read(piece)
            if not data:
                return
            yield data
    while True:
        data = await content.readany()
        if not data:
            return
        if len(data) < BLOCK_SIZE:
            parts, size = [data], len(data)
            while size < BLOCK_SIZE:
                more = content.read_nowait(BLOCK_SIZE - size)
                if not more:
                    break
                parts.append(more)
                size += len(more)
            if len(parts) > 1:
                data = b"".join(parts)
        yield data


class HttpDownloader(BaseDownloader):
    """Downloads http:// and https:// URLs (bytes as served: no transparent decompression).

    A retry after a broken transfer continues with a ``Range`` request when the server
    advertised ``Accept-Ranges: bytes`` and a validator (ETag or Last-Modified); otherwise it
    starts again from the first byte.
    """

    supports_resume = True

    async def _request(self, method: str, url: str, headers: dict[str, str]
                       ) -> aiohttp.ClientResponse:
        """Send ``method url`` through the remote's auth flow (see :mod:`.auth`: it may
        answer a bearer challenge with a token and send the request again); returns the open
        answer the flow ends with, or raises for a status of 400 and above."""
        flow = self.context.auth.auth_flow(AuthRequest(method, url, headers))
        sent = 0
        async with contextlib.aclosing(flow):
            request = await anext(flow)
            while True:
                response = await self._send(request)
                sent += 1
                try:
                    request = await flow.asend(await _answer_of(request, response))
                except StopAsyncIteration:
                    break  # the flow's last request: this answer is the caller's
                except BaseException:
                    response.release()
                    raise
                response.release()
        if response.status >= 400:
            status, reason = response.status, response.reason or ""
            if status == 401 and sent == 1:  # no challenge the flow could answer
                reason = "authentication required"
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.release()
            raise http_error(url, status, reason, retry_after=retry_after)
        return response

    async def _send(self, request: AuthRequest) -> aiohttp.ClientResponse:
        """Send one request of an auth flow (errors name its URL)."""
        with translated(request.url):
            return await self.context.request(request.method, request.url,
                                              dict(request.headers), request.authorize)

    @contextlib.asynccontextmanager
    async def _open(self, url: str, resume: ResumeFrom | None) -> AsyncIterator[Attempt]:
        headers: dict[str, str] = {}
        if resume is not None:
            headers["Range"] = f"bytes={resume.offset}-"
            headers["If-Range"] = resume.validator
        with translated(url):
            response = await self._request("GET", url, headers)
            try:
                start: int | None = 0
                validator = _resume_validator(response)
                if response.status == 206:  # a part: the one asked for, or none of use
                    if resume is not None and _starts_at(response) == resume.offset:
                        start, validator = resume.offset, resume.validator
                    else:
                        start, validator = None, None
                yield Attempt(
                    final_url=str(response.url),
                    status=response.status,
                    headers=CIMultiDictProxy(response.headers.copy()),
                    body=response_blocks(response, self.context.bandwidth.piece),
                    start=start,
                    resume_validator=validator,
                    length=response.content_length,
                )
            finally:
                response.release()

    async def _head_attempt(self, url: str) -> HeadResult:
        with translated(url):
            response = await self._request("HEAD", url, {})
            try:
                return HeadResult(
                    url=self.url,
                    final_url=str(response.url),
                    status=response.status,
                    headers=CIMultiDictProxy(response.headers.copy()),
                    size=response.content_length,
                )
            finally:
                response.release()


def _starts_at(response: aiohttp.ClientResponse) -> int | None:
    """The offset where the part a ``206`` answer holds starts (``None``: not said)."""
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _resume_validator(response: aiohttp.ClientResponse) -> str | None:
    """What a later request may resume the body of a ``200`` answer from: its strong ETag,
    else its Last-Modified date, when the server accepts byte ranges (``None`` otherwise,
    and for a value that cannot travel back in an ``If-Range`` header)."""
    if response.status != 200:
        return None
    if response.headers.get("Accept-Ranges", "").lower() != "bytes":
        return None
    etag = response.headers.get("ETag", "")
    validator = etag if etag and not etag.startswith("W/") else response.headers.get(
        "Last-Modified")
    return None if validator and has_control_characters(validator) else validator


async def _answer_of(request: AuthRequest, response: aiohttp.ClientResponse) -> AuthResponse:
    """What an auth flow is told of the ``response`` to its ``request`` (its body read, up
    to the request's limit, when it asked and the status is below 400)."""
    body = None
    if request.read_limit is not None and response.status < 400:
        with translated(request.url):
            body = await read_up_to(response, request.read_limit)
    return AuthResponse(response.status, str(response.url), response.headers,
                        response.request_info.headers.get("Authorization"), body)
