"""The content view: stored Artifacts from storage, everything else streamed from upstream."""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from urllib.parse import quote

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse

from ..conf import app_settings
from ..download import DownloadError
from ..download.defaults import BLOCK_SIZE
from ..models import Artifact, ContentUnit, Remote
from ..models.fields import SecretUnreadable
from ..storage.objects import ObjectStore
from ..storage.paths import is_local
from .factories import factory_for
from .forwarding import forwarded
from .stored import SOURCE, StoredFile, answer
from .streaming import failure_answer, join

log = logging.getLogger(__name__)

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
    mark_source(request, "storage" if unit.artifact is not None else unit.remote.policy)
    if unit.artifact is not None and _redirects(unit.artifact):
        return await _redirect_to_object(request, unit, unit.artifact)
    objects = ObjectStore.of(unit.artifact.file.storage) if unit.artifact is not None else None
    if objects is not None:
        response = await _serve_object(request, unit, unit.artifact, objects)
        if response is not None:
            return response
    elif unit.artifact is not None:
        handle = await _open_stored(unit.artifact)
        if handle is not None:
            return _serve_artifact(request, unit, unit.artifact, handle)
        if unit.remote.policy == Remote.Policy.IMMEDIATE:
            return HttpResponse(
                f"The stored file of {unit.relative_path} is missing or damaged; re-sync the "
                "remote to download it again.\n", status=503, content_type="text/plain",
                headers={"Retry-After": "300"})
        # on_demand / streamed: the upstream still has it.
        mark_source(request, unit.remote.policy)
    try:
        if request.method == "HEAD":
            return await _head_upstream(unit)
        return await _stream_upstream(request, unit)
    except SecretUnreadable as exc:
        log.error("content %s/%s: %s", remote_name, relative_path, exc)
        return _error_response(exc, unit)


def mark_source(request: HttpRequest, source: str) -> None:
    """Tell the content app's metrics what answered this request (storage, on_demand or
    streamed); see :class:`pulp_downloads.content.asgi.ContentApp`."""
    scope = getattr(request, "scope", None)
    if scope is not None:
        scope[SOURCE] = source


def _redirects(artifact: Artifact) -> bool:
    """Whether this stored file is answered with a redirect to object storage."""
    return not is_local(artifact.file.storage) and app_settings().redirect_to_object_storage


async def _redirect_to_object(request: HttpRequest, unit: ContentUnit,
                              artifact: Artifact) -> HttpResponse:
    """``GET``: a redirect to a presigned URL of the object (the object store answers Range
    and conditional requests itself). ``HEAD``: answered here from the Artifact (a presigned
    URL is signed for ``GET`` only)."""
    stored = StoredFile.of(artifact, unit.relative_path)
    if request.method == "HEAD":
        plan = answer(stored, "HEAD", request.headers.get("If-None-Match"), None, None)
        return HttpResponse(status=plan.status, headers=plan.headers)
    url = await sync_to_async(artifact.file.storage.url, thread_sensitive=False)(
        artifact.file.name)
    return HttpResponse(status=302, headers={"Location": url, "ETag": stored.etag,
                                             "Cache-Control": "no-store"})


def _loops_back(request: HttpRequest) -> bool:
    """Whether the request came from this site's own downloader (its ``Via`` pseudonym)."""
    via = request.headers.get("Via")
    return bool(via) and app_settings().via in via


async def _open_stored(artifact: Artifact):
    """The Artifact's file opened for reading, or ``None`` (logged) when it is missing or
    its size is not the Artifact's (one ``fstat``: such a file is answered as a missing one,
    never as a 200 that would be cut)."""
    loop = asyncio.get_running_loop()
    try:
        handle = await loop.run_in_executor(None, artifact.file.storage.open,
                                            artifact.file.name, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        log.error("the file of Artifact sha256:%s is missing from storage (%s)",
                  artifact.sha256, artifact.file.name)
        return None
    try:
        size = os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, ValueError):  # a storage without local files
        size = await loop.run_in_executor(None, artifact.file.storage.size, artifact.file.name)
    if size != artifact.size:
        handle.close()
        log.error("the file of Artifact sha256:%s in storage (%s) has %d bytes, not %d: "
                  "answered as missing", artifact.sha256, artifact.file.name, size,
                  artifact.size)
        return None
    return handle


def _serve_artifact(request: HttpRequest, unit: ContentUnit, artifact: Artifact,
                    handle) -> HttpResponse:
    """Answer from the opened stored file (closed here unless a body streams from it)."""
    plan = answer(StoredFile.of(artifact, unit.relative_path), request.method,
                  request.headers.get("If-None-Match"), request.headers.get("Range"),
                  request.headers.get("If-Range"))
    if not plan.has_body:
        handle.close()
        return HttpResponse(status=plan.status, headers=plan.headers)
    return StreamingHttpResponse(_read_artifact(handle, plan.start, plan.stop),
                                 status=plan.status, headers=plan.headers)


async def _serve_object(request: HttpRequest, unit: ContentUnit, artifact: Artifact,
                        objects: ObjectStore) -> HttpResponse | None:
    """Answer from the Artifact's object in an S3 bucket, streaming only the bytes asked for
    (a ranged GET of the object); ``None`` (logged) when the object is missing."""
    plan = answer(StoredFile.of(artifact, unit.relative_path), request.method,
                  request.headers.get("If-None-Match"), request.headers.get("Range"),
                  request.headers.get("If-Range"))
    if not plan.has_body:
        return HttpResponse(status=plan.status, headers=plan.headers)
    body = await sync_to_async(objects.get, thread_sensitive=False)(
        artifact.file.name, plan.start, plan.stop, artifact.size)
    if body is None:
        log.error("the object of Artifact sha256:%s is missing from storage (%s), or has "
                  "another size than %d bytes", artifact.sha256, artifact.file.name,
                  artifact.size)
        return None
    return StreamingHttpResponse(_read_object(body), status=plan.status, headers=plan.headers)


async def _read_object(body) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    chunks = body.iter_chunks(BLOCK_SIZE)
    try:
        while block := await loop.run_in_executor(None, next, chunks, b""):
            yield block
    finally:
        await loop.run_in_executor(None, body.close)


async def _read_artifact(handle, start: int, stop: int) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(None, handle.seek, start)
        position = start
        while position < stop:
            block = await loop.run_in_executor(None, handle.read, min(BLOCK_SIZE, stop - position))
            if not block:
                break
            position += len(block)
            yield block
    finally:
        await loop.run_in_executor(None, handle.close)


def _error_response(error: Exception, unit: ContentUnit) -> HttpResponse:
    status, text = failure_answer(error, unit.relative_path)
    return HttpResponse(text, status=status, content_type="text/plain")


async def _head_upstream(unit: ContentUnit) -> HttpResponse:
    factory = await factory_for(unit.remote)
    try:
        head = await factory.build(quote(unit.relative_path), expected_size=unit.size).head()
    except DownloadError as exc:
        return _error_response(exc, unit)
    return HttpResponse(status=200, headers=forwarded(head.headers, unit.relative_path, unit.size))


async def _stream_upstream(request: HttpRequest, unit: ContentUnit) -> HttpResponse:
    reader = await join(unit, app_settings().working_directory / "serving")
    if reader is None:  # another process stored it meanwhile
        return await serve(request, unit.remote.name, unit.relative_path)
    flight = reader.flight
    try:
        upstream_headers = await asyncio.shield(flight.headers)
        if unit.remote.verify_before_serve:
            await asyncio.shield(flight.done)  # every byte validated before the first is sent
    except (DownloadError, SecretUnreadable) as exc:
        reader.leave()
        return _error_response(exc, unit)
    except BaseException:
        reader.leave()
        raise
    return StreamingHttpResponse(_relay(reader, unit), status=200,
                                 headers=forwarded(upstream_headers, unit.relative_path,
                                                   unit.size))


async def _relay(reader, unit: ContentUnit) -> AsyncIterator[bytes]:
    """Stream the download to one client. If the client goes away: under ``streamed`` the
    download stops when nobody else reads it; under ``on_demand`` it completes and is kept."""
    try:
        async for block in reader.blocks():
            yield block
    finally:
        reader.leave()  # the last reader of a streamed download cancels it
