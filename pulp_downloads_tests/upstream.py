"""Loopback servers and fault scripts for the tests: a scriptable upstream file server, its
fault helpers, a :class:`Gate` that holds answers until the test releases them, and small
network helpers. Fixtures built on them live in ``conftest.py``.

A "slow" upstream is one held at a gate, never one that sleeps: a sleep races the code under
test (a loaded machine loses the race), a gate decides the order of events."""
from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import gzip
import hashlib
import socket
import threading
import time

from aiohttp import web

from pulp_downloads.download import AddressPolicy, RetryPolicy

#: For factories given explicit LibrarySettings: the suite's upstreams live on 127.0.0.1.
LOOPBACK_ALLOWED = AddressPolicy(allowed=["127.0.0.0/8"])
FAST_RETRIES = RetryPolicy(base=0.01, cap=0.05, retry_after_cap=5, mirror_cooldown=60)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Gate:
    """A door held upstream answers wait at (:meth:`wait`) until the test lets them through:
    all of them, now and later (:meth:`open`), or a given number (:meth:`let_through`).

    Usable from any thread and any event loop (a threaded upstream waits in its own loop
    while the test opens the gate from its thread). :attr:`held` counts the waiters held, so
    a test can wait for the requests it holds to be there.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = False
        self._passes = 0
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []

    @property
    def held(self) -> int:
        """How many waiters are held at the gate right now."""
        with self._lock:
            return len(self._waiting)

    def open(self) -> None:
        """Let every waiter through, now and from now on."""
        with self._lock:
            self._open = True
            woken, self._waiting = self._waiting, []
        _wake(woken)

    def let_through(self, count: int = 1) -> None:
        """Let ``count`` more waiters through: those held first (oldest first), then the
        next ones to arrive."""
        with self._lock:
            woken, self._waiting = self._waiting[:count], self._waiting[count:]
            self._passes += count - len(woken)
        _wake(woken)

    async def wait(self) -> None:
        """Return once the gate lets this caller through."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._open:
                return
            if self._passes:
                self._passes -= 1
                return
            waiter = (loop, loop.create_future())
            self._waiting.append(waiter)
        try:
            await waiter[1]
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            raise


def _wake(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]]) -> None:
    def release(future: asyncio.Future) -> None:
        if not future.done():
            future.set_result(None)

    for loop, future in waiters:
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
            loop.call_soon_threadsafe(release, future)


class Upstream:
    """A loopback file server whose answers can be scripted per path.

    ``files`` maps a path (no leading slash) to bytes. ``faults[path]`` is a list of
    coroutine functions ``(request, upstream) -> Response`` consumed one per request before
    the file is served normally. ``hits`` counts requests per path. Gates made by
    :meth:`gate` are opened by :meth:`open_gates` (the fixtures do it when the test ends).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = collections.defaultdict(list)
        self.hits: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, str, dict]] = []
        self.basic_auth: tuple[str, str] | None = None
        self.bearer: dict | None = None  # {"realm": url, "token": str, "service":..., "scope":...}
        self.token_requests = 0
        #: When set, token requests wait at this gate before they are answered.
        self.token_gate: Gate | None = None
        self.gzip_paths: set[str] = set()
        self.server = None
        self.in_flight = 0
        self.max_in_flight = 0
        #: Bytes written per path by :func:`endless_fault`.
        self.sent: collections.Counter = collections.Counter()
        self.gates: list[Gate] = []

    def gate(self) -> Gate:
        """A new closed :class:`Gate`, opened at the latest by :meth:`open_gates`."""
        gate = Gate()
        self.gates.append(gate)
        return gate

    def open_gates(self) -> None:
        """Open every gate of :meth:`gate`: nothing stays held when the server closes."""
        for gate in self.gates:
            gate.open()

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.url + path

    def add_repo(self, prefix: str, files: dict[str, bytes], extra_lines: str = "") -> str:
        """Serve ``files`` under ``prefix/`` with a PULP_MANIFEST; returns the manifest URL."""
        lines = []
        for rel, data in files.items():
            self.files[f"{prefix}/{rel}"] = data
            lines.append(f"{rel},{sha256(data)},{len(data)}\n")
        self.files[f"{prefix}/PULP_MANIFEST"] = ("".join(lines) + extra_lines).encode()
        return f"{self.url}{prefix}/PULP_MANIFEST"

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/token", self.token)
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        if self.token_gate is not None:
            await self.token_gate.wait()
        if self.basic_auth:
            expected = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if request.headers.get("Authorization") != expected:
                return web.Response(status=401)
        if request.query.get("scope") != self.bearer.get("scope"):
            return web.Response(status=400, text="wrong scope")
        return web.json_response({"token": self.bearer["token"], "expires_in": 300})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        self.hits[path] += 1
        self.requests.append((request.method, path, dict(request.headers)))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.faults.get(path):
                fault = self.faults[path].pop(0)
                return await fault(request, self)
            denied = self.check_auth(request)
            if denied is not None:
                return denied
            if path not in self.files:
                return web.Response(status=404, text="not here")
            return await self.serve(request, path)
        finally:
            self.in_flight -= 1

    def check_auth(self, request: web.Request) -> web.Response | None:
        given = request.headers.get("Authorization", "")
        if self.bearer:
            if given == f"Bearer {self.bearer['token']}":
                return None
            challenge = (f'Bearer realm="{self.url}token",service="{self.bearer["service"]}",'
                         f'scope="{self.bearer["scope"]}"')
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        if self.basic_auth:
            expected = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if given != expected:
                return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="x"'})
        return None

    async def serve(self, request: web.Request, path: str) -> web.StreamResponse:
        data = self.files[path]
        etag = f'"{sha256(data)[:16]}"'
        headers = {"Accept-Ranges": "bytes", "ETag": etag, "Content-Type": "application/octet-stream",
                   "Last-Modified": "Wed, 21 Oct 2015 07:28:00 GMT", "Cache-Control": "max-age=60"}
        if path in self.gzip_paths:
            headers["Content-Encoding"] = "gzip"
        status = 200
        range_header = request.headers.get("Range")
        if range_header and request.headers.get("If-Range", etag) == etag:
            start = int(range_header.split("=")[1].split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            data = data[start:]
            status = 206
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(status=status, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(data)
        await response.prepare(request)
        view = memoryview(data)
        for i in range(0, len(data), 256 * 1024):
            await response.write(view[i:i + 256 * 1024])
        await response.write_eof()
        return response


def status_fault(status: int, headers: dict | None = None):
    async def fault(request, upstream):
        return web.Response(status=status, headers=headers or {}, text=f"status {status}")
    return fault


def endless_fault(chunk: bytes, *, bound: int, status: int = 200, first: bytes = b"",
                  headers: dict | None = None):
    """Answer ``status`` with ``first`` then ``chunk`` again and again (chunked: no length
    announced) until ``bound`` bytes were written or the client went away;
    ``upstream.sent[path]`` counts the bytes written (into the socket's buffers included)."""
    async def fault(request, upstream):
        path = request.match_info["path"]
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        try:
            await response.write(first)
            upstream.sent[path] += len(first)
            while upstream.sent[path] < bound:
                await response.write(chunk)
                upstream.sent[path] += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        return response
    return fault


def truncate_fault(keep: int):
    """Announce the full length, send ``keep`` bytes, then drop the connection."""
    async def fault(request, upstream):
        data = upstream.files[request.match_info["path"]]
        response = web.StreamResponse(headers={"Accept-Ranges": "bytes",
                                               "ETag": f'"{sha256(data)[:16]}"'})
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[:keep])
        await asyncio.sleep(0.05)
        request.transport.close()
        return response
    return fault


def stall_fault(gate: Gate, keep: int = 10, *, resumable: bool = False):
    """Send ``keep`` bytes, then stall until ``gate`` lets this answer through, and end it
    short (with ``resumable``, the response advertises ranges and an ETag, as the file's
    normal answer does)."""
    async def fault(request, upstream):
        data = upstream.files[request.match_info["path"]]
        response = web.StreamResponse(headers={"Accept-Ranges": "bytes",
                                               "ETag": f'"{sha256(data)[:16]}"'}
                                      if resumable else None)
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[:keep])
        await gate.wait()
        return response
    return fault


def held_fault(gate: Gate):
    """Wait until ``gate`` lets this request through, then serve the file normally."""
    async def fault(request, upstream):
        await gate.wait()
        return await upstream.serve(request, request.match_info["path"])
    return fault


def held_body_fault(gate: Gate, keep: int):
    """Send the headers and ``keep`` bytes, then the rest once ``gate`` lets this answer
    through."""
    async def fault(request, upstream):
        data = upstream.files[request.match_info["path"]]
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[:keep])
        await gate.wait()
        await response.write(data[keep:])
        return response
    return fault


def delay_fault(seconds: float):
    """Wait ``seconds``, then serve the file normally (slowness as a lower bound only: to
    order events, hold the request at a :class:`Gate` with :func:`held_fault`)."""
    async def fault(request, upstream):
        await asyncio.sleep(seconds)
        return await upstream.serve(request, request.match_info["path"])
    return fault


def redirect_fault(location: str, status: int = 302):
    async def fault(request, upstream):
        raise web.HTTPFound(location) if status == 302 else web.HTTPMovedPermanently(location)
    return fault


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    """Return once something listens on 127.0.0.1:``port`` (a server starting up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


class Recorder:
    """A hostile loopback server, an "origin" or a "proxy", that records the method, target
    and headers of every request it receives (``seen``) and answers each with ``status``:
    by default ``401`` with a Basic challenge, which would draw credentials out of a client
    that holds some for it."""

    def __init__(self, status: int = 401) -> None:
        self.status = status
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.server = None

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, str(request.url), dict(request.headers)))
        challenge = {"WWW-Authenticate": 'Basic realm="give me your password"'}
        return web.Response(status=self.status, text="recorded",
                            headers=challenge if self.status == 401 else None)

    def received(self) -> str:
        """Everything received, as one text: targets, header names and values."""
        return "\n".join(f"{method} {target}\n" + "\n".join(f"{k}: {v}" for k, v in headers.items())
                         for method, target, headers in self.seen)


@contextlib.contextmanager
def running_threaded(owner):
    """Serve ``owner.app()`` on 127.0.0.1 from a thread of its own; ``owner.server`` is the
    test server while the block runs."""
    from aiohttp.test_utils import TestServer

    loop = asyncio.new_event_loop()
    server = TestServer(owner.app())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start_server(), loop).result(60)
    owner.server = server
    try:
        yield owner
    finally:
        open_gates = getattr(owner, "open_gates", None)
        if open_gates is not None:  # nothing stays held when the server closes
            open_gates()
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def running_threaded_upstream():
    """An :class:`Upstream` served on 127.0.0.1 from a thread of its own."""
    with running_threaded(Upstream()) as up:
        yield up
