"""The fast path of ``/content/``: stored Artifacts on the local filesystem answered by a plain
ASGI callable, in front of Django.

A content request through Django pays for middleware, request signals that close and reopen
the database connection, a query per request and thread hops for each file operation
(``docs/performance.md`` has the figures). :class:`ContentApp` answers ``GET`` and
``HEAD`` for stored files itself: it finds the file through a small cache of
``(remote name, relative path) -> LocalFile`` (one query on a miss, entries kept for
``PULP_DOWNLOADS["CONTENT_CACHE_TTL"]`` seconds and dropped when a Remote changes in this
process), and sends it with ``http.response.pathsend`` when the server offers it, with an
``X-Accel-Redirect`` header when nginx is in front (``PULP_DOWNLOADS_CONTENT_X_ACCEL_REDIRECT``),
or by reading it. A ``GET`` of a file not stored yet under ``on_demand``/``streamed`` is
relayed from the shared download (:mod:`.streaming`). Everything else (``HEAD`` of such
files, ``verify_before_serve``, errors, other storages) goes to Django's view, which stays
the reference behaviour.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async

from .. import metrics
from ..models import Remote
from . import lookup
from .security import secured
from .stored import SOURCE, StoredFile, answer

log = logging.getLogger(__name__)

PREFIX = "/content/"
#: Files up to this size are read in one call on the event loop (from the page cache this
#: is a few microseconds; a thread hop costs more). Larger ones are read in CHUNK blocks on
#: a thread.
READ_INLINE_UP_TO = 256 * 1024
CHUNK = 4 * 1024 * 1024
MAX_ENTRIES = 100_000
#: The request headers this app acts on (ASGI servers give header names in lower case).
_WANTED_HEADERS = frozenset((b"if-none-match", b"range", b"if-range", b"via"))


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A stored file on the local filesystem, with the headers of its usual answer (``200``,
    the whole file) encoded once."""

    stored: StoredFile
    path: str
    whole_file_headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, stored: StoredFile, root: Path) -> "LocalFile":
        plan = answer(stored, "HEAD", None, None, None)
        return cls(stored, str(root / stored.name), secured(_encode(plan.headers)))


class StoredFileCache:
    """``(remote name, relative path) ->`` what answers it, for ``ttl`` seconds: the
    :class:`LocalFile` of a stored file, or the ContentUnit (with its Remote) of a file a
    ``streamed`` remote never stores. Anything else is looked up again next time."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}

    def get(self, remote_name: str, relative_path: str) -> Any:
        """The cached entry at this path, unless unknown or expired."""
        entry = self._entries.get((remote_name, relative_path))
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        return None

    def put(self, remote_name: str, relative_path: str, answer: Any) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[(remote_name, relative_path)] = (time.monotonic() + self.ttl, answer)

    def forget(self, remote_name: str, relative_path: str) -> None:
        self._entries.pop((remote_name, relative_path), None)

    def clear(self) -> None:
        self._entries.clear()


#: The cache of this process (shared by every ContentApp; cleared when a Remote changes).
stored_files = StoredFileCache(ttl=30.0)


#: Settings whose change (tests, ``override_settings``) makes every ContentApp read its
#: configuration again.
_WATCHED_SETTINGS = {"MEDIA_ROOT", "STORAGES", "PULP_DOWNLOADS", "SECRET_KEY"}
_apps: "list[ContentApp]" = []


def _settings_changed(setting: str, **kwargs) -> None:
    if setting in _WATCHED_SETTINGS:
        stored_files.clear()
        for app in _apps:
            app._settings_loaded = False


class ContentApp:
    """ASGI: ``/content/`` requests for stored local files answered here, the rest by
    ``fallback`` (Django)."""

    def __init__(self, fallback: Any) -> None:
        from django.core.signals import setting_changed

        self.fallback = fallback
        self._settings_loaded = False
        self.root: Path | None = None
        self.x_accel: str = ""
        self.via: str = ""
        _apps.append(self)
        setting_changed.connect(_settings_changed, dispatch_uid="pulp_downloads.content_app")

    def _load_settings(self) -> None:
        from django.core.files.storage import FileSystemStorage, default_storage

        from ..conf import app_settings

        conf = app_settings()
        # Locality is decided by the storage's type, never by probing it.
        self.root = (Path(default_storage.location) if isinstance(default_storage,
                                                                   FileSystemStorage) else None)
        self.x_accel = conf.content_x_accel_redirect
        self.via = conf.via
        self.working = conf.working_directory
        stored_files.ttl = conf.content_cache_ttl
        self._settings_loaded = True

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            return await self.fallback(scope, receive, send)
        started = False

        async def counted(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                # Every /content/ answer, Django's included, is sandboxed (see .security).
                message = {**message, "headers": secured(message.get("headers", ()))}
                if not started:
                    started = True  # counted before the client can see the answer
                    metrics.content_request(message["status"], scope.get(SOURCE, "none"))
            await send(message)

        try:
            await self._serve(scope, receive, counted)
        finally:
            if not started:  # the client went away before an answer started
                metrics.content_request(499, scope.get(SOURCE, "none"))

    async def _serve(self, scope, receive, send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            return await self.fallback(scope, receive, send)
        if not self._settings_loaded:
            self._load_settings()
        if self.root is None:
            return await self.fallback(scope, receive, send)
        rest = scope["path"][len(PREFIX):]
        remote_name, sep, relative_path = rest.partition("/")
        if not sep or not relative_path or "\x00" in rest:
            return await self.fallback(scope, receive, send)
        headers = _request_headers(scope)
        if self.via and self.via in headers.get("via", ""):
            return await self.fallback(scope, receive, send)  # Django answers the loop
        stored = stored_files.get(remote_name, relative_path)
        if stored is None:
            try:
                found = await sync_to_async(lookup.find)(remote_name, relative_path)
            except Exception:  # noqa: BLE001 - the reference path says what failed
                log.exception("content lookup of %s/%s failed", remote_name, relative_path)
                found = None
            if found is None:
                return await self.fallback(scope, receive, send)
            if isinstance(found, StoredFile):
                stored = LocalFile.of(found, self.root)
                stored_files.put(remote_name, relative_path, stored)
            else:
                stored = found
                if found.remote.policy == Remote.Policy.STREAMED:
                    # never stored: every GET streams it (on_demand ones are looked up
                    # again, as stored after this request)
                    stored_files.put(remote_name, relative_path, stored)
        if not isinstance(stored, LocalFile):
            if scope["method"] == "GET" and await self._stream(scope, receive, send, stored):
                return None
            return await self.fallback(scope, receive, send)
        scope[SOURCE] = "storage"
        try:
            fd = os.open(stored.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:  # gone from storage: Django answers 503 or fetches from upstream
            stored_files.forget(remote_name, relative_path)
            return await self.fallback(scope, receive, send)
        if os.fstat(fd).st_size != stored.stored.size:
            # Not the Artifact's file (truncated, ...): Django answers it as a missing one,
            # never a 200 that would be cut.
            os.close(fd)
            stored_files.forget(remote_name, relative_path)
            return await self.fallback(scope, receive, send)
        try:
            await self._send_file(scope, send, headers, stored, fd)
        finally:
            os.close(fd)

    async def _stream(self, scope, receive, send, unit) -> bool:
        """GET of a file not stored yet under ``on_demand``/``streamed``: the bytes are passed
        on as they arrive from the download in flight (shared with other clients). Returns
        ``False`` to leave the request to Django (unknown paths, ``verify_before_serve``,
        ``immediate`` remotes, ...)."""
        from .streaming import failure_answer, join
        from .forwarding import forwarded

        if unit.remote.verify_before_serve or unit.remote.policy == Remote.Policy.IMMEDIATE:
            return False
        scope[SOURCE] = unit.remote.policy
        reader = await join(unit, self.working / "serving")
        if reader is None:  # another process stored it meanwhile: Django serves the file
            return False
        flight = reader.flight
        # The client hanging up interrupts this task wherever it waits (the upstream's
        # headers, the next block, a slow send): under streamed the download then stops.
        task = asyncio.current_task()
        gone = asyncio.ensure_future(_disconnected(receive))

        def hang_up(_) -> None:
            if not gone.cancelled():
                task.cancel()

        gone.add_done_callback(hang_up)
        try:
            await flight.started.wait()
            if flight.headers.exception() is not None:
                await _send_text(send, *failure_answer(flight.headers.exception(),
                                                       unit.relative_path))
                return True
            await send({"type": "http.response.start", "status": 200,
                        "headers": _encode(forwarded(flight.headers.result(), unit.relative_path,
                                                       unit.size))})
            async for block in reader.blocks():  # a digest mismatch raises: the response is cut
                await send({"type": "http.response.body", "body": block, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except asyncio.CancelledError:
            if gone.done() and not gone.cancelled():
                task.uncancel()
                return True  # the client left
            raise
        finally:
            gone.remove_done_callback(hang_up)
            gone.cancel()
            reader.leave()
        return True

    async def _send_file(self, scope, send, headers: dict[str, str], local: LocalFile,
                         fd: int) -> None:
        method = scope["method"]
        stored = local.stored
        if self.x_accel and method == "GET" and "if-none-match" not in headers:
            # nginx sends the file (ranges included) from its internal location. The empty
            # body has a length, so nginx keeps its connection to the app for the next request
            # (without one it opened a connection per request).
            await send({"type": "http.response.start", "status": 200, "headers": _encode({
                "X-Accel-Redirect": self.x_accel + stored.name.split("/", 1)[1],
                "Content-Type": stored.media_type, "ETag": stored.etag,
                "Content-Length": "0",
            })})
            await send({"type": "http.response.body", "body": b""})
            return
        if "if-none-match" in headers or "range" in headers:
            plan = answer(stored, method, headers.get("if-none-match"), headers.get("range"),
                          headers.get("if-range"))
            status, start, stop = plan.status, plan.start, plan.stop
            response_headers = _encode(plan.headers)
        else:  # the usual request: the whole file
            status, start, stop = 200, 0, stored.size if method == "GET" else 0
            response_headers = local.whole_file_headers
        await send({"type": "http.response.start", "status": status,
                    "headers": response_headers})
        if stop <= start:
            await send({"type": "http.response.body", "body": b""})
            return
        length = stop - start
        extensions = scope.get("extensions") or {}
        if length > READ_INLINE_UP_TO and status == 200 and "http.response.pathsend" in extensions:
            await send({"type": "http.response.pathsend", "path": local.path})
            return
        if length <= READ_INLINE_UP_TO:
            await send({"type": "http.response.body", "body": os.pread(fd, length, start)})
            return
        loop = asyncio.get_running_loop()
        position = start
        while position < stop:
            count = min(CHUNK, stop - position)
            block = await loop.run_in_executor(None, os.pread, fd, count, position)
            if not block:  # the file is shorter than its Artifact says: end the response
                log.error("stored file %s is shorter than its Artifact (%d bytes)", local.path,
                          stored.size)
                raise OSError(f"stored file {local.path} ended early")
            position += len(block)
            await send({"type": "http.response.body", "body": block,
                        "more_body": position < stop})


async def _send_text(send, status: int, text: str) -> None:
    body = text.encode()
    await send({"type": "http.response.start", "status": status, "headers": _encode({
        "Content-Type": "text/plain; charset=utf-8", "Content-Length": str(len(body))})})
    await send({"type": "http.response.body", "body": body})


async def _disconnected(receive) -> None:
    """Returns once the client went away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _request_headers(scope) -> dict[str, str]:
    """The request headers this app acts on, by lower-case name."""
    return {name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope.get("headers", ()) if name in _WANTED_HEADERS}


def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
