"""Shared by the content app's tests: test data, remotes with units, and small HTTP helpers."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import aiohttp
from asgiref.sync import sync_to_async

from pulp_downloads.models import Artifact, ContentUnit, Remote

from .upstream import sha256, wait_for_port

DATA = os.urandom(3 * 1024 * 1024 + 11)


@sync_to_async
def remote_with_units(url: str, policy: str, files: dict[str, bytes], **fields) -> Remote:
    remote = Remote.objects.create(name=f"r-{policy}", url=url, policy=policy, **fields)
    for path, data in files.items():
        ContentUnit.objects.create(remote=remote, relative_path=path, sha256=sha256(data),
                                   size=len(data))
    return remote


async def get(url: str, **kwargs) -> tuple[int, dict, bytes]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(url, **kwargs) as response:
            return response.status, response.headers.copy(), await response.read()


async def wait_for_artifact(digest: str, timeout: float = 20) -> Artifact:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        artifact = await Artifact.objects.filter(sha256=digest).afirst()
        if artifact is not None:
            unit = await ContentUnit.objects.filter(artifact=artifact).afirst()
            if unit is not None:
                return artifact
        await asyncio.sleep(0.05)
    raise AssertionError("the on_demand download was not saved")


def gated_fault(keep: int, release: asyncio.Event):
    """Send ``keep`` bytes, then the rest once ``release`` is set."""
    async def fault(request, up):
        data = up.files[request.match_info["path"]]
        response = aiohttp.web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[:keep])
        await release.wait()
        await response.write(data[keep:])
        return response
    return fault


async def wait_until(condition, what: str, seconds: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


def stop_while_a_request_waits(threaded_upstream, policy: str, server: subprocess.Popen,
                               port: int, stop: signal.Signals) -> None:
    """A client of ``server`` (listening on ``port``) waits on a ``policy`` file whose upstream
    holds it; ``server`` is then sent ``stop`` and must exit within 60 s. Leaves nothing
    running."""
    gate = threading.Event()

    async def held(request, up):
        await asyncio.get_running_loop().run_in_executor(None, gate.wait, 120)
        return await up.serve(request, request.match_info["path"])

    data = DATA[:3000]
    url = threaded_upstream.add_repo("repo", {"a.bin": data})
    threaded_upstream.faults["repo/a.bin"].append(held)
    remote = Remote.objects.create(name="held", url=url, policy=policy)
    ContentUnit.objects.create(remote=remote, relative_path="a.bin", sha256=sha256(data),
                               size=len(data))
    client = None
    try:
        wait_for_port(port)
        client = subprocess.Popen([sys.executable, "-c", (
            "import urllib.request\n"
            f"urllib.request.urlopen('http://127.0.0.1:{port}/content/held/a.bin', timeout=120)"
        )], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not threaded_upstream.hits["repo/a.bin"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threaded_upstream.hits["repo/a.bin"] == 1, "the download did not start"
        server.send_signal(stop)
        server.wait(60)
    finally:
        gate.set()
        for process in (server, client):
            if process is not None and process.poll() is None:
                process.kill()
