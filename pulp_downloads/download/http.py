"""HttpDownloader: http:// and https:// through the factory's aiohttp session."""
from __future__ import annotations

import email.utils
import re
import time
from collections.abc import AsyncIterator

import aiohttp
from multidict import CIMultiDictProxy

from .base import BaseDownloader
from .defaults import BLOCK_SIZE
from .ledger import ByteLedger
from .exceptions import IncompleteDownload, http_error, translated
from .headers import has_control_characters
from .result import HeadResult
from .writers import Writer


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

    _resume_validator: str | None = None

    async def _request(self, method: str, url: str, headers: dict[str, str]):
        """Send a request, answering one bearer-token challenge; returns an open response."""
        context = self.context
        auth = context.auth
        response = await context.request(method, url, headers, auth.authorization)
        if response.status == 401:
            challenge = response.headers.getall("WWW-Authenticate", [])
            challenged = str(response.url)  # the hop that asked, after any redirects
            sent = response.request_info.headers.get("Authorization")
            response.release()
            retry_with = await auth.answer_challenge(context, challenged, challenge, sent)
            if retry_with is None:
                raise http_error(url, 401, "authentication required")
            # The token now cached for that origin is what authorization() sends there.
            response = await context.request(method, url, headers, auth.authorization)
        if response.status >= 400:
            status, reason = response.status, response.reason or ""
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            response.release()
            raise http_error(url, status, reason, retry_after=retry_after)
        return response

    async def _attempt(self, url: str, writer: Writer, ledger: ByteLedger) -> dict:
        offset = ledger.offset
        headers: dict[str, str] = {}
        if offset and self._resume_validator:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = self._resume_validator
        with translated(url):
            response = await self._request("GET", url, headers)
            try:
                if offset and not self._resumes_at(response, offset):
                    await self._restart(writer, ledger)
                    if response.status == 206:  # a part, but not the one asked for
                        raise IncompleteDownload(url, "the server answered a resume with "
                                                      "bytes from another offset")
                    offset = 0
                elif response.status == 206 and not offset:
                    raise IncompleteDownload(url, "the server answered with a part of the "
                                                  "file (206) when the whole was asked for")
                self._remember_resume_validator(response)
                journal = getattr(writer, "journal", None)
                if journal is not None and response.status == 200:
                    journal(url, self._resume_validator)
                await self._headers_received(response.status, response.headers)
                await self._consume(response_blocks(response, self.context.bandwidth.piece),
                                    writer, ledger, url)
                expected = response.content_length
                if expected is not None and ledger.offset - offset != expected:
                    raise IncompleteDownload(
                        url, f"body ended after {ledger.offset - offset} of {expected} bytes"
                    )
                self.final_url = str(response.url)
                return {
                    "final_url": self.final_url,
                    "headers": CIMultiDictProxy(response.headers.copy()),
                    "status": response.status,
                }
            finally:
                response.release()

    @staticmethod
    def _resumes_at(response: aiohttp.ClientResponse, offset: int) -> bool:
        if response.status != 206:
            return False
        match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
        return bool(match) and int(match.group(1)) == offset

    def _remember_resume_validator(self, response: aiohttp.ClientResponse) -> None:
        if response.status != 200:
            return
        if response.headers.get("Accept-Ranges", "").lower() != "bytes":
            self._resume_validator = None
            return
        etag = response.headers.get("ETag", "")
        if etag and not etag.startswith("W/"):
            validator = etag
        else:
            validator = response.headers.get("Last-Modified")
        # Sent back in If-Range: a value that cannot travel in a header is no validator.
        self._resume_validator = (None if validator and has_control_characters(validator)
                                  else validator)

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

