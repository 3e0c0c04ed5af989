"""The content view: stored Artifacts from storage, everything else streamed from upstream."""
from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
from collections.abc import AsyncIterator
from urllib.parse import quote

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import http_date

from ..conf import app_settings
from ..download import DownloadError, NotFound
from ..models import Artifact, ContentUnit, Remote
from ..models.fields import SecretUnreadable
from .factories import factory_for
from .streaming import join

log = logging.getLogger(__name__)

#: Upstream headers passed on to clients (hop-by-hop and transfer headers never are).
FORWARDED_HEADERS = ("Content-Type", "Last-Modified", "ETag", "Cache-Control", "Expires",
                     "Content-Disposition", "Content-Language")
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
#: Positions have at most this many digits (2**63 has 19); longer ones cannot be satisfied.
_MAX_POSITION_DIGITS = 19
CHUNK = 1024 * 1024


async def serve(request: HttpRequest, remote_name: str, relative_path: str) -> HttpResponse:
    """``GET``/``HEAD`` one file of a remote by its relative path."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
        return response
    if "\x00" in remote_name or "\x00" in relative_path:
        raise Http404("no such content")
    if _loops_back(request):
        return HttpResponse(
            "Loop detected: this request was sent by this site's own download of a remote "
            "whose URL or mirror points back at /content/.\n",
            status=508, content_type="text/plain",
        )
    unit = await (ContentUnit.objects.select_related("remote", "artifact")
                  .filter(remote__name=remote_name, relative_path=relative_path).afirst())
    if unit is None:
        raise Http404(f"{relative_path!r} is not listed by remote {remote_name!r}")
    if unit.artifact is not None:
        handle = await _open_stored(unit.artifact)
        if handle is not None:
            return _serve_artifact(request, unit, unit.artifact, handle)
        if unit.remote.policy == Remote.Policy.IMMEDIATE:
            return HttpResponse(
                f"The stored file of {unit.relative_path} is missing; re-sync the remote to "
                "download it again.\n", status=503, content_type="text/plain",
                headers={"Retry-After": "300"})
        # on_demand / streamed: the upstream still has it.
    try:
        if request.method == "HEAD":
            return await _head_upstream(unit)
        return await _stream_upstream(request, unit)
    except SecretUnreadable as exc:
        log.error("content %s/%s: %s", remote_name, relative_path, exc)
        return HttpResponse(f"Upstream failure for {unit.relative_path}: the remote is "
                            "misconfigured (see the server log)\n", status=502,
                            content_type="text/plain")


def _loops_back(request: HttpRequest) -> bool:
    """Whether the request came from this site's own downloader (its ``Via`` pseudonym)."""
    via = request.headers.get("Via")
    return bool(via) and app_settings().via in via


def _content_type(path: str) -> str:
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


async def _open_stored(artifact: Artifact):
    """The Artifact's file opened for reading, or ``None`` (logged) when it is missing."""
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(None, artifact.file.storage.open, artifact.file.name,
                                          "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        log.error("the file of Artifact sha256:%s is missing from storage (%s)",
                  artifact.sha256, artifact.file.name)
        return None


def _unsatisfiable(size: int, headers: dict, handle) -> HttpResponse:
    handle.close()
    return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})


def _serve_artifact(request: HttpRequest, unit: ContentUnit, artifact: Artifact,
                    handle) -> HttpResponse:
    """Answer from the opened stored file (closed here unless a body streams from it)."""
    etag = f'"{artifact.sha256}"'
    headers = {
        "ETag": etag, "Last-Modified": http_date(artifact.created.timestamp()),
        "Accept-Ranges": "bytes", "Content-Type": _content_type(unit.relative_path),
    }
    if request.headers.get("If-None-Match") == etag:
        handle.close()
        return HttpResponse(status=304, headers={"ETag": etag})
    size = artifact.size
    start, end, status = 0, size - 1, 200
    range_header = request.headers.get("Range")
    if range_header and request.headers.get("If-Range", etag) == etag:
        match = _RANGE.match(range_header.strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if max(len(first), len(last)) > _MAX_POSITION_DIGITS:
                return _unsatisfiable(size, headers, handle)
            if first:
                start, end = int(first), min(int(last), size - 1) if last else size - 1
            else:
                start, end = max(size - int(last), 0), size - 1
            if start >= size or start > end:
                return _unsatisfiable(size, headers, handle)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    headers["Content-Length"] = str(end - start + 1 if size else 0)
    if request.method == "HEAD":
        handle.close()
        return HttpResponse(status=status, headers=headers)
    return StreamingHttpResponse(_read_artifact(handle, start, end + 1), status=status,
                                 headers=headers)


async def _read_artifact(handle, start: int, stop: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, handle.seek, start)
        position = start
        while position < stop:
            block = await loop.run_in_executor(None, handle.read, min(CHUNK, stop - position))
            if not block:
                break
            position += len(block)
            yield block
    finally:
        await loop.run_in_executor(None, handle.close)


def _forwarded(upstream_headers, unit: ContentUnit) -> dict[str, str]:
    headers = {name: upstream_headers[name] for name in FORWARDED_HEADERS
               if upstream_headers is not None and name in upstream_headers}
    headers.setdefault("Content-Type", _content_type(unit.relative_path))
    headers["Content-Length"] = str(unit.size)
    return headers


def _error_response(error: DownloadError, unit: ContentUnit) -> HttpResponse:
    if isinstance(error, NotFound):
        return HttpResponse(f"Not found upstream: {unit.relative_path}\n", status=404,
                            content_type="text/plain")
    return HttpResponse(f"Upstream failure for {unit.relative_path}: {error.message}\n",
                        status=502, content_type="text/plain")


async def _head_upstream(unit: ContentUnit) -> HttpResponse:
    factory = await factory_for(unit.remote)
    try:
        head = await factory.build(quote(unit.relative_path), expected_size=unit.size).head()
    except DownloadError as exc:
        return _error_response(exc, unit)
    return HttpResponse(status=200, headers=_forwarded(head.headers, unit))


async def _stream_upstream(request: HttpRequest, unit: ContentUnit) -> HttpResponse:
    flight = await join(unit, app_settings().working_directory / "serving")
    flight.readers += 1  # keeps the served file open for this client
    try:
        upstream_headers = await asyncio.shield(flight.headers)
        if unit.remote.verify_before_serve:
            await asyncio.shield(flight.done)  # every byte validated before the first is sent
    except DownloadError as exc:
        flight.reader_left()
        return _error_response(exc, unit)
    except BaseException:
        flight.reader_left()
        raise
    return StreamingHttpResponse(_relay(flight, unit), status=200,
                                 headers=_forwarded(upstream_headers, unit))


async def _relay(flight, unit: ContentUnit) -> AsyncIterator[bytes]:
    """Stream the flight to one client. If the client goes away: under ``streamed`` the
    download stops when nobody else reads it; under ``on_demand`` it completes and is kept."""
    try:
        async for block in flight.read_from(0):
            yield block
    finally:
        flight.reader_left()  # the last reader of a streamed download cancels it
