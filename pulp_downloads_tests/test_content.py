"""The content app on stored files, through a real ASGI server (uvicorn): ranges, ETags, the
fast path, X-Accel-Redirect through a real nginx."""
from __future__ import annotations

import os
from email.utils import formatdate
from pathlib import Path

import aiohttp
import pytest

from pulp_downloads.models import Artifact

from .content_app import DATA, get, remote_with_units, wait_for_artifact
from .upstream import sha256

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]


async def test_stored_artifact_is_served_with_etag_and_ranges(upstream, asgi_server):
    url = upstream.add_repo("repo", {"pool/a.bin": DATA})
    remote = await remote_with_units(url, "immediate", {"pool/a.bin": DATA})
    from pulp_downloads.sync import async_sync_remote

    await async_sync_remote(remote)
    hits = dict(upstream.hits)
    base = f"{asgi_server}/content/{remote.name}/pool/a.bin"
    status, headers, body = await get(base)
    assert status == 200 and body == DATA
    assert headers["ETag"] == f'"{sha256(DATA)}"' and headers["Content-Length"] == str(len(DATA))
    assert "Last-Modified" in headers and headers["Accept-Ranges"] == "bytes"
    status, headers, body = await get(base, headers={"Range": "bytes=10-19"})
    assert status == 206 and body == DATA[10:20]
    assert headers["Content-Range"] == f"bytes 10-19/{len(DATA)}"
    status, _, body = await get(base, headers={"Range": "bytes=-5"})
    assert status == 206 and body == DATA[-5:]
    status, headers, _ = await get(base, headers={"Range": f"bytes={len(DATA)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(DATA)}"
    status, _, _ = await get(base, headers={"If-None-Match": f'"{sha256(DATA)}"'})
    assert status == 304
    async with aiohttp.ClientSession() as session:
        async with session.head(base) as response:
            assert response.status == 200 and response.headers["Content-Length"] == str(len(DATA))
    assert dict(upstream.hits) == hits, "stored content never touches upstream"

async def test_odd_requests_get_clear_answers_not_500(upstream, asgi_server):
    from pulp_downloads.sync import async_sync_remote

    url = upstream.add_repo("repo", {"a.bin": DATA[:1000]})
    remote = await remote_with_units(url, "immediate", {"a.bin": DATA[:1000]})
    await async_sync_remote(remote)
    base = f"{asgi_server}/content/{remote.name}"
    status, headers, _ = await get(f"{base}/a.bin", headers={"Range": f"bytes={'9' * 5000}-"})
    assert status == 416 and headers["Content-Range"] == "bytes */1000"
    status, _, _ = await get(f"{base}/a.bin", headers={"Range": f"bytes=0-{'9' * 30}"})
    assert status == 416
    status, _, _ = await get(f"{base}/a%00.bin")
    assert status == 404
    status, _, _ = await get(f"{asgi_server}/content/r%00x/a.bin")
    assert status == 404


async def test_a_missing_stored_file_is_503_under_immediate_and_resync_restores_it(
        upstream, asgi_server):
    from pulp_downloads.sync import async_sync_remote

    content = {"a.bin": DATA[:5000], "b.bin": DATA[5000:9000]}
    url = upstream.add_repo("repo", content)
    remote = await remote_with_units(url, "immediate", content)
    await async_sync_remote(remote)
    artifact = await Artifact.objects.aget(sha256=sha256(content["a.bin"]))
    path = artifact.file.path
    os.unlink(path)
    status, headers, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 503 and b"missing" in body  # not a truncated 200
    hits = upstream.hits["repo/a.bin"]
    summary = await async_sync_remote(remote)
    assert upstream.hits["repo/a.bin"] == hits + 1 and upstream.hits["repo/b.bin"] == 1
    assert summary.downloaded == 1
    with open(path, "rb") as fh:
        assert fh.read() == content["a.bin"]
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == content["a.bin"]


async def test_a_missing_stored_file_is_fetched_from_upstream_under_on_demand(
        upstream, asgi_server):
    data = DATA[:7000]
    url = upstream.add_repo("repo", {"a.bin": data})
    remote = await remote_with_units(url, "on_demand", {"a.bin": data})
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == data
    artifact = await wait_for_artifact(sha256(data))
    os.unlink(artifact.file.path)
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == data
    assert upstream.hits["repo/a.bin"] == 2

async def test_stored_files_are_answered_by_the_fast_path(upstream, asgi_server):
    from pulp_downloads.content.asgi import stored_files
    from pulp_downloads.sync import async_sync_remote

    data = DATA[:20_000]
    url = upstream.add_repo("repo", {"pool/a.bin": data})
    remote = await remote_with_units(url, "immediate", {"pool/a.bin": data})
    await async_sync_remote(remote)
    base = f"{asgi_server}/content/{remote.name}/pool/a.bin"
    status, headers, body = await get(base)
    assert status == 200 and body == data
    assert (remote.name, "pool/a.bin") in stored_files._entries  # not through Django
    assert "X-Frame-Options" not in headers  # Django's middleware did not run
    assert headers["ETag"] == f'"{sha256(data)}"' and headers["X-Content-Type-Options"] == "nosniff"
    artifact = await Artifact.objects.aget(sha256=sha256(data))
    assert headers["Last-Modified"] == formatdate(artifact.created.timestamp(), usegmt=True)
    whole = headers
    status, headers, body = await get(base, headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    status, _, _ = await get(base, headers={"If-None-Match": f'"{sha256(data)}"'})
    assert status == 304
    async with aiohttp.ClientSession() as session:
        async with session.head(base) as response:
            assert response.status == 200 and response.headers["Content-Length"] == str(len(data))
            assert await response.read() == b""
            assert {name: response.headers[name] for name in whole if name != "Date"} == {
                name: value for name, value in whole.items() if name != "Date"}


@pytest.fixture
def nginx_front(asgi_server, settings, tmp_path):
    """A real nginx in front of the content app, with the internal location that
    X-Accel-Redirect points at; yields its base URL."""
    import shutil
    import signal
    import subprocess

    from .upstream import free_port, wait_for_port

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert os.path.exists(nginx), "nginx is missing (Debian's nginx-light)"
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS,
                               "CONTENT_X_ACCEL_REDIRECT": "/protected-artifacts/"}
    port = free_port()
    app_port = asgi_server.rsplit(":", 1)[1]
    conf = tmp_path / "nginx.conf"
    # Workers read the test's private media directory: as the user running the suite.
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(f"""
{user}
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {tmp_path}/body;
  proxy_temp_path {tmp_path}/proxy;
  fastcgi_temp_path {tmp_path}/fastcgi;
  uwsgi_temp_path {tmp_path}/uwsgi;
  scgi_temp_path {tmp_path}/scgi;
  upstream pulp_downloads {{ server 127.0.0.1:{app_port}; keepalive 8; }}
  server {{
    listen 127.0.0.1:{port};
    location /content/ {{
      proxy_pass http://pulp_downloads;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
    }}
    location /protected-artifacts/ {{
      internal;
      alias {settings.MEDIA_ROOT}/artifact/;
      add_header Content-Security-Policy "sandbox" always;
      add_header X-Content-Type-Options "nosniff" always;
    }}
  }}
}}
""")
    process = subprocess.Popen([nginx, "-c", str(conf), "-p", str(tmp_path)])
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGQUIT)
        process.wait(10)


async def test_x_accel_redirect_through_a_real_nginx(upstream, asgi_server, nginx_front):
    from pulp_downloads.sync import async_sync_remote

    data = DATA[:300_000]
    url = upstream.add_repo("repo", {"pool/a.rpm": data})
    remote = await remote_with_units(url, "immediate", {"pool/a.rpm": data})
    await async_sync_remote(remote)
    # The app itself only names the file...
    status, headers, body = await get(f"{asgi_server}/content/{remote.name}/pool/a.rpm")
    assert status == 200 and body == b""
    assert headers["X-Accel-Redirect"].startswith("/protected-artifacts/")
    assert headers["Content-Security-Policy"] == "sandbox"
    # ...and nginx sends it, ranges and HEAD included, over one kept connection to the app.
    app_port = int(asgi_server.rsplit(":", 1)[1])
    before = _connections_to(app_port)
    base = f"{nginx_front}/content/{remote.name}/pool/a.rpm"
    for _ in range(5):
        status, headers, body = await get(base)
        assert status == 200 and body == data
    assert len(_connections_to(app_port) - before) == 1, "nginx opened a connection per request"
    assert "X-Accel-Redirect" not in headers
    # nginx drops the app's other headers with X-Accel-Redirect: the documented location
    # adds them back (docs/content.md), on every status.
    assert headers.getall("Content-Security-Policy") == ["sandbox"]
    assert headers.getall("X-Content-Type-Options") == ["nosniff"]
    from pulp_downloads.content.stored import content_type

    assert headers["Content-Type"] == content_type("a.rpm") != "application/octet-stream"
    status, headers, body = await get(base, headers={"Range": "bytes=10-19"})
    assert status == 206 and body == data[10:20]
    assert headers["Content-Security-Policy"] == "sandbox"
    status, headers, _ = await get(base, headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Security-Policy"] == "sandbox"
    async with aiohttp.ClientSession() as session:
        async with session.head(base) as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(len(data))
    status, headers, _ = await get(base, headers={"If-None-Match": f'"{sha256(data)}"'})
    assert status == 304 and headers["Content-Security-Policy"] == "sandbox"


def _connections_to(port: int) -> set[int]:
    """The client-side ports of the TCP connections to 127.0.0.1:``port``, open or closing
    (``/proc/net/tcp``)."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if remote == f"0100007F:{port:04X}" and state != "0A":  # 0A: listening
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports
