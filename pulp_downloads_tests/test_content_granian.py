"""The whole application under granian, the other documented ASGI server, with two worker
processes: stored files (read, and sent by the server through ``http.response.pathsend``),
ranges, validators, HEAD, a ``streamed`` file and a Django page; and the documented
``--workers-kill-timeout`` stopping a worker that has a request waiting on its upstream."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from pulp_downloads.sync import async_sync_remote

from .content_app import DATA, get, remote_with_units, stop_while_a_request_waits
from .upstream import free_port, sha256, wait_for_port

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]

ROOT = Path(__file__).resolve().parent.parent


def start_granian(env: dict, port: int, log: Path, workers: int = 2,
                  kill_timeout: int = 10) -> subprocess.Popen:
    """granian serving the project's ASGI application as the docs run it."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "granian"), "--interface", "asginl", "--host",
         "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--workers-kill-timeout", str(kill_timeout), "--log-level", "warning",
         "settings.asgi:application"],
        cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


@pytest.fixture
def granian_server(subprocess_env, tmp_path):
    """granian serving the project's ASGI application (two workers) on a free loopback port;
    yields its base URL."""
    port = free_port()
    log = tmp_path / "granian.log"
    server = start_granian(subprocess_env, port, log)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    assert b"Traceback" not in log.read_bytes(), log.read_text()


async def test_granian_serves_stored_and_streamed_files(upstream, granian_server):
    small, big = DATA[:20_000], DATA  # read by the app / sent by granian (pathsend)
    url = upstream.add_repo("repo", {"small.bin": small, "big.bin": big})
    stored = await remote_with_units(url, "immediate", {"small.bin": small, "big.bin": big})
    await async_sync_remote(stored)
    streamed = await remote_with_units(url, "streamed", {"big.bin": big})

    for name, data in (("small.bin", small), ("big.bin", big)):
        status, headers, body = await get(f"{granian_server}/content/{stored.name}/{name}")
        assert status == 200 and body == data, name
        assert headers["ETag"] == f'"{sha256(data)}"' and "Last-Modified" in headers
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"] == "sandbox"  # pathsend answers too
    base = f"{granian_server}/content/{stored.name}/big.bin"
    status, headers, body = await get(base, headers={"Range": "bytes=1000-2999"})
    assert status == 206 and body == big[1000:3000]
    assert headers["Content-Range"] == f"bytes 1000-2999/{len(big)}"
    status, _, _ = await get(base, headers={"Range": f"bytes={len(big)}-"})
    assert status == 416
    status, _, body = await get(base, headers={"If-None-Match": f'"{sha256(big)}"'})
    assert status == 304 and body == b""
    async with aiohttp.ClientSession() as session:
        async with session.head(base) as response:
            assert response.status == 200 and response.headers["Content-Length"] == str(len(big))
            assert await response.read() == b""

    status, headers, body = await get(f"{granian_server}/content/{streamed.name}/big.bin")
    assert status == 200 and body == big and headers["Content-Security-Policy"] == "sandbox"
    status, headers, body = await get(f"{granian_server}/content/{stored.name}/nothing-here.bin")
    assert status == 404 and headers["Content-Security-Policy"] == "sandbox"
    status, _, body = await get(f"{granian_server}/status/")
    assert status == 200 and b"database" in body


def test_granian_stops_with_a_request_waiting_on_its_upstream(
        threaded_upstream, subprocess_env, tmp_path):
    """A client waits on a streamed file whose upstream holds it; SIGINT still stops granian
    once ``--workers-kill-timeout`` passed (without it the worker never stops)."""
    port = free_port()
    server = start_granian(subprocess_env, port, tmp_path / "granian.log", workers=1,
                           kill_timeout=2)
    # without a kill timeout it would wait for the upstream
    stop_while_a_request_waits(threaded_upstream, "streamed", server, port, signal.SIGINT)
    assert b"refused to gracefully stop" in (tmp_path / "granian.log").read_bytes()
