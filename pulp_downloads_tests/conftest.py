"""Shared fixtures: isolated media root, TLS material from trustme, loopback servers."""
from __future__ import annotations

import pytest
import trustme


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test stores files under its own MEDIA_ROOT; tasks run immediately."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    conf = dict(settings.PULP_DOWNLOADS)
    conf["WORKING_DIRECTORY"] = str(tmp_path / "media" / ".working")
    settings.PULP_DOWNLOADS = conf
    yield


@pytest.fixture
def file_roots(settings, tmp_path):
    """Allow file:// URLs under a fresh directory; returns that directory."""
    root = tmp_path / "files"
    root.mkdir()
    conf = dict(settings.PULP_DOWNLOADS)
    conf["FILE_URL_ALLOWED_ROOTS"] = [str(root)]
    settings.PULP_DOWNLOADS = conf
    return root


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_cert(ca):
    return ca.issue_cert("127.0.0.1", "localhost", "::1")


@pytest.fixture(scope="session")
def client_cert(ca):
    return ca.issue_cert("client@example.test")


# --- a configurable upstream HTTP server on 127.0.0.1 ------------------------------------------
import asyncio  # noqa: E402
import base64  # noqa: E402
import collections  # noqa: E402
import contextlib  # noqa: E402
import gzip  # noqa: E402
import hashlib  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

from aiohttp import web  # noqa: E402

from pulp_downloads.download import (  # noqa: E402
    AddressPolicy,
    DownloaderFactory,
    RemoteConfig,
    RetryPolicy,
)

#: For factories given explicit LibrarySettings: the suite's upstreams live on 127.0.0.1.
LOOPBACK_ALLOWED = AddressPolicy(allowed=["127.0.0.0/8"])
FAST_RETRIES = RetryPolicy(base=0.01, cap=0.05, retry_after_cap=5, mirror_cooldown=60)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Upstream:
    """A loopback file server whose answers can be scripted per path.

    ``files`` maps a path (no leading slash) to bytes. ``faults[path]`` is a list of
    coroutine functions ``(request, upstream) -> Response`` consumed one per request before
    the file is served normally. ``hits`` counts requests per path.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, list] = collections.defaultdict(list)
        self.hits: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, str, dict]] = []
        self.basic_auth: tuple[str, str] | None = None
        self.bearer: dict | None = None  # {"realm": url, "token": str, "service":..., "scope":...}
        self.token_requests = 0
        self.gzip_paths: set[str] = set()
        self.server = None
        self.in_flight = 0
        self.max_in_flight = 0

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
        await asyncio.sleep(0.05)  # let concurrent downloads pile up on the challenge
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


def stall_fault(seconds: float, keep: int = 10):
    """Send ``keep`` bytes, then stall for ``seconds``."""
    async def fault(request, upstream):
        data = upstream.files[request.match_info["path"]]
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[:keep])
        await asyncio.sleep(seconds)
        return response
    return fault


def delay_fault(seconds: float):
    """Wait ``seconds``, then serve the file normally."""
    async def fault(request, upstream):
        await asyncio.sleep(seconds)
        return await upstream.serve(request, request.match_info["path"])
    return fault


def redirect_fault(location: str, status: int = 302):
    async def fault(request, upstream):
        raise web.HTTPFound(location) if status == 302 else web.HTTPMovedPermanently(location)
    return fault


@pytest.fixture
async def upstream(aiohttp_server):
    up = Upstream()
    up.server = await aiohttp_server(up.app())
    return up


@pytest.fixture
async def mirror(aiohttp_server):
    up = Upstream()
    up.server = await aiohttp_server(up.app())
    return up


@pytest.fixture
async def make_factory():
    """Build factories with fast retries and no events; closes them after the test."""
    factories = []

    def make(url: str, **fields) -> DownloaderFactory:
        retry = fields.pop("retry_policy", FAST_RETRIES)
        events = fields.pop("events", None)
        settings = fields.pop("settings", None)
        config = RemoteConfig.from_remote(type("R", (), {"url": url, **fields})())
        factory = DownloaderFactory(config, retry_policy=retry, settings=settings, events=events)
        factories.append(factory)
        return factory

    yield make
    for factory in factories:
        await factory.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def http_proxy(tmp_path_factory):
    """A real proxy (proxy.py) on loopback requiring basic auth ``proxyuser:proxypass``."""
    port = free_port()
    log = tmp_path_factory.mktemp("proxy") / "proxy.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(port),
             "--basic-auth", "proxyuser:proxypass", "--num-acceptors", "1",
             "--num-workers", "1", "--log-level", "WARNING"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def server_ssl_context(server_cert) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    return context


def gzip_bytes(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


@contextlib.contextmanager
def running_threaded_upstream():
    """An :class:`Upstream` served on 127.0.0.1 from a thread of its own."""
    from aiohttp.test_utils import TestServer

    loop = asyncio.new_event_loop()
    up = Upstream()
    server = TestServer(up.app())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start_server(), loop).result(10)
    up.server = server
    try:
        yield up
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def threaded_upstream():
    """An upstream server on its own thread (the API test client is synchronous)."""
    with running_threaded_upstream() as up:
        yield up


@pytest.fixture
def other_threaded_upstream():
    """A second threaded upstream: another origin (another port) on loopback."""
    with running_threaded_upstream() as up:
        yield up


@pytest.fixture
async def close_thread_connections():
    """Async tests run ORM work through sync_to_async in a helper thread: close that thread's
    database connection afterwards (PostgreSQL refuses to drop a database still in use)."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def subprocess_env(settings, transactional_db) -> dict[str, str]:
    """Environment for a ``manage.py`` subprocess that uses this test's database and media."""
    import os
    from urllib.parse import quote

    from django.db import connection

    params = connection.settings_dict
    if params["ENGINE"].endswith("sqlite3"):
        url = f"sqlite:///{params['NAME']}"
    else:
        auth = quote(params["USER"] or "")
        if params.get("PASSWORD"):
            auth += ":" + quote(params["PASSWORD"])
        url = f"postgres://{auth}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{params['NAME']}"
    env = dict(os.environ, DATABASE_URL=url, MEDIA_ROOT=settings.MEDIA_ROOT,
               PULP_DOWNLOADS_LOG_LEVEL="WARNING")
    env.pop("TASKS_BACKEND", None)
    return env


# --- API users in the role groups ---------------------------------------------------------------
@pytest.fixture
def make_user(db):
    """``make_user(name, *groups)``: a user in the named role groups (none: no permissions)."""
    from django.contrib.auth.models import Group, User

    def make(name: str, *groups: str, **fields):
        user = User.objects.create_user(name, password=f"{name}-pass", **fields)
        user.groups.add(*Group.objects.filter(name__in=groups))
        assert user.groups.count() == len(groups), f"missing group among {groups}"
        return User.objects.get(pk=user.pk)  # fresh: no cached permissions

    return make


@pytest.fixture
def api_client_for(make_user):
    """``api_client_for(*groups)``: an APIClient authenticated as a new user in ``groups``."""
    from rest_framework.test import APIClient

    counter = iter(range(1000))

    def client(*groups: str):
        api = APIClient()
        api.force_authenticate(make_user(f"user{next(counter)}", *groups))
        return api

    return client
