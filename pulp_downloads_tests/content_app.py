"""Shared by the content app's tests: test data, remotes with units, and small HTTP helpers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import aiohttp
from asgiref.sync import sync_to_async

from pulp_downloads.models import Artifact, ContentUnit, Remote

from .upstream import held_fault, sha256, wait_for_port
from .waiting import eventually, wait_for

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


async def wait_for_artifact(digest: str) -> Artifact:
    """The Artifact of ``digest`` once a unit links it (an on_demand download saved it)."""
    async def linked() -> Artifact | None:
        artifact = await Artifact.objects.filter(sha256=digest).afirst()
        if artifact is not None and await ContentUnit.objects.filter(artifact=artifact).aexists():
            return artifact
        return None

    return await eventually(linked, "the on_demand download was saved")


def stop_while_a_request_waits(threaded_upstream, policy: str, server: subprocess.Popen,
                               port: int, stop: signal.Signals) -> None:
    """A client of ``server`` (listening on ``port``) waits on a ``policy`` file whose upstream
    holds it; ``server`` is then sent ``stop`` and must exit within 60 s. Leaves nothing
    running."""
    gate = threaded_upstream.gate()
    data = DATA[:3000]
    url = threaded_upstream.add_repo("repo", {"a.bin": data})
    threaded_upstream.faults["repo/a.bin"].append(held_fault(gate))
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
        wait_for(lambda: gate.held, "the download to reach the upstream")
        assert threaded_upstream.hits["repo/a.bin"] == 1
        server.send_signal(stop)
        server.wait(60)
    finally:
        gate.open()
        for process in (server, client):
            if process is not None and process.poll() is None:
                process.kill()
