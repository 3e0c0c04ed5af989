"""The content app on files not stored yet (on_demand, streamed), through a real ASGI server
(uvicorn) and a real upstream on loopback."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from pulp_downloads.models import Artifact, ContentFlight, ContentUnit, Remote

from .content_app import DATA, get, remote_with_units, stop_while_a_request_waits, wait_for_artifact
from .upstream import delay_fault, held_body_fault, held_fault, sha256, stall_fault, status_fault
from .waiting import eventually

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]


async def test_on_demand_streams_first_then_serves_from_storage(upstream, asgi_server):
    url = upstream.add_repo("repo", {"a.bin": DATA})
    remote = await remote_with_units(url, "on_demand", {"a.bin": DATA})
    status, headers, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == DATA
    await wait_for_artifact(sha256(DATA))  # saved right after the last byte validated
    unit = await ContentUnit.objects.select_related("artifact").aget(remote=remote)
    assert unit.artifact is not None and unit.artifact.sha256 == sha256(DATA)
    status, headers, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == DATA and headers["ETag"] == f'"{sha256(DATA)}"'
    assert upstream.hits["repo/a.bin"] == 1, "the second request did not touch upstream"


async def test_streamed_is_served_and_never_saved_with_forwarded_headers(upstream, asgi_server):
    url = upstream.add_repo("repo", {"a.bin": DATA})
    remote = await remote_with_units(url, "streamed", {"a.bin": DATA})
    for _ in range(2):
        status, headers, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
        assert status == 200 and body == DATA
    assert headers["Cache-Control"] == "max-age=60"
    assert headers["Last-Modified"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert headers["ETag"] == f'"{sha256(DATA)[:16]}"'
    assert "Accept-Ranges" not in headers and "Keep-Alive" not in headers
    assert upstream.hits["repo/a.bin"] == 2
    assert not await Artifact.objects.aexists()


async def test_concurrent_requests_share_one_upstream_download(upstream, asgi_server):
    from pulp_downloads.content import streaming

    gate = upstream.gate()
    url = upstream.add_repo("repo", {"a.bin": DATA})
    upstream.faults["repo/a.bin"].append(held_fault(gate))
    remote = await remote_with_units(url, "on_demand", {"a.bin": DATA})
    clients = [asyncio.ensure_future(get(f"{asgi_server}/content/{remote.name}/a.bin"))
               for _ in range(5)]
    # The upstream holds its answer until all five requests read a download in flight.
    await eventually(lambda: sum(len(flight.readers) for flight in list(
        streaming._flights.values())) == 5, "five readers of the download in flight")
    gate.open()
    results = await asyncio.gather(*clients)
    assert all(status == 200 and body == DATA for status, _, body in results)
    assert upstream.hits["repo/a.bin"] == 1


async def test_upstream_404_passes_through_and_500_is_502(upstream, asgi_server):
    url = upstream.add_repo("repo", {})
    remote = await remote_with_units(url, "on_demand", {"gone.bin": b"x", "broken.bin": b"y"},
                                     max_retries=0)
    status, _, _ = await get(f"{asgi_server}/content/{remote.name}/gone.bin")
    assert status == 404
    upstream.files["repo/broken.bin"] = b"y"
    upstream.faults["repo/broken.bin"].append(status_fault(500))
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/broken.bin")
    assert status == 502 and b"HTTP 500" in body
    status, _, _ = await get(f"{asgi_server}/content/{remote.name}/not-listed.bin")
    assert status == 404


async def test_digest_mismatch_aborts_the_response_and_saves_nothing(upstream, asgi_server):
    url = upstream.add_repo("repo", {"a.bin": DATA})
    upstream.files["repo/a.bin"] = os.urandom(len(DATA))  # same size, other bytes
    remote = await remote_with_units(url, "on_demand", {"a.bin": DATA}, max_retries=0)
    with pytest.raises(aiohttp.ClientPayloadError):
        await get(f"{asgi_server}/content/{remote.name}/a.bin")
    unit = await eventually(  # the failure is recorded after the response was cut
        lambda: ContentUnit.objects.filter(remote=remote).exclude(last_error="").afirst(),
        "the failure to be recorded")
    assert "digest mismatch" in unit.last_error
    assert not await Artifact.objects.aexists()


async def test_head_does_not_download_the_body(upstream, asgi_server):
    url = upstream.add_repo("repo", {"a.bin": DATA})
    remote = await remote_with_units(url, "on_demand", {"a.bin": DATA})
    async with aiohttp.ClientSession() as session:
        async with session.head(f"{asgi_server}/content/{remote.name}/a.bin") as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(len(DATA))
            assert response.headers["Cache-Control"] == "max-age=60"
    assert [m for m, p, _ in upstream.requests if p == "repo/a.bin"] == ["HEAD"]


async def test_client_disconnect_under_on_demand_still_saves(upstream, asgi_server):
    url = upstream.add_repo("repo", {"a.bin": DATA})
    remote = await remote_with_units(url, "on_demand", {"a.bin": DATA})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{asgi_server}/content/{remote.name}/a.bin") as response:
            await response.content.read(1024)  # then hang up
    await wait_for_artifact(sha256(DATA))


async def test_mirror_serves_when_the_primary_fails(upstream, mirror, asgi_server):
    url = upstream.add_repo("repo", {"a.bin": DATA})
    upstream.faults["repo/a.bin"] += [status_fault(503)] * 3
    mirror.add("repo/a.bin", DATA)
    remote = await remote_with_units(url, "streamed", {"a.bin": DATA}, max_retries=0,
                                     mirrors=[mirror.url + "repo/"])
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == DATA
    assert mirror.hits["repo/a.bin"] == 1


async def test_verify_before_serve_sends_nothing_until_the_file_validated(upstream, asgi_server):
    url = upstream.add_repo("repo", {"good.bin": DATA, "bad.bin": DATA})
    upstream.files["repo/bad.bin"] = os.urandom(len(DATA))
    remote = await remote_with_units(url, "streamed", {"good.bin": DATA, "bad.bin": DATA},
                                     max_retries=0, verify_before_serve=True)
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/good.bin")
    assert status == 200 and body == DATA
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/bad.bin")
    assert status == 502 and b"digest mismatch" in body


async def test_client_disconnect_under_streamed_stops_the_download(upstream, asgi_server):
    from pulp_downloads.content import streaming

    url = upstream.add_repo("repo", {"a.bin": DATA})
    upstream.faults["repo/a.bin"].append(stall_fault(upstream.gate(), keep=512 * 1024))
    remote = await remote_with_units(url, "streamed", {"a.bin": DATA})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{asgi_server}/content/{remote.name}/a.bin") as response:
            await response.content.read(1024)
            flights = list(streaming._flights.values())
            assert len(flights) == 1
    # The upstream stalls until the test ends: only the client leaving can end the download.
    await eventually(lambda: flights[0].task.done(), "the download to stop")
    assert flights[0].task.cancelled(), "nobody reads any more: the download stopped"
    assert not await Artifact.objects.aexists()


@pytest.mark.parametrize("policy", ["streamed", "on_demand"])
async def test_a_remote_pointing_back_at_the_content_app_fails_instead_of_waiting(
        asgi_server, policy):
    data = b"loop" * 100
    looped = f"{asgi_server}/content/r-{policy}/PULP_MANIFEST"  # the remote's own content path
    remote = await remote_with_units(looped, policy, {"f.bin": data}, max_retries=3)
    status, _, body = await asyncio.wait_for(
        get(f"{asgi_server}/content/{remote.name}/f.bin"), 30)
    assert status == 502
    assert b"508" in body  # the inner request was refused as a loop, once (not retried)
    assert not await Artifact.objects.aexists()


async def test_another_site_may_serve_from_this_content_app(upstream, asgi_server):
    """A different deployment (another SECRET_KEY, so another Via pseudonym) is no loop."""
    from pulp_downloads.conf import site_via

    data = b"chained" * 10
    remote = await remote_with_units(upstream.add_repo("repo", {"f.bin": data}), "streamed",
                                     {"f.bin": data})
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/f.bin",
                                headers={"Via": f"1.1 {site_via('another site key')}"})
    assert status == 200 and body == data

async def test_a_streamed_download_stops_when_its_only_client_leaves_before_the_headers(
        upstream, asgi_server, settings):
    from pulp_downloads.content import streaming

    gate = upstream.gate()
    data = DATA[:4000]
    url = upstream.add_repo("repo", {"a.bin": data})
    upstream.faults["repo/a.bin"].append(held_fault(gate))
    remote = await remote_with_units(url, "streamed", {"a.bin": data})
    serving = Path(settings.PULP_DOWNLOADS["WORKING_DIRECTORY"]) / "serving"

    async def leave_early():
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{asgi_server}/content/{remote.name}/a.bin") as response:
                await response.read()

    client = asyncio.ensure_future(leave_early())
    await eventually(lambda: gate.held, "the download to reach the upstream")
    assert streaming._flights
    client.cancel()  # the client goes away before any header came back
    await asyncio.gather(client, return_exceptions=True)
    # The upstream still holds its answer: only the client leaving can end the download.
    await eventually(lambda: not streaming._flights and not list(serving.glob("*.part")),
                     "the download to be cancelled, leaving no .part file")
    gate.open()


def test_uvicorn_stops_promptly_with_a_download_in_flight(
        threaded_upstream, subprocess_env, settings, tmp_path):
    """A client waits on an on_demand file whose upstream holds it; SIGTERM still stops the
    server once its graceful-shutdown timeout passed. The partial file it leaves (uvicorn ends
    by re-raising the signal) is removed by the next sync's housekeeping once stale."""
    import signal
    import subprocess
    import sys
    import time

    from pulp_downloads.storage import ArtifactStore
    from pulp_downloads.sync.workfiles import STALE_TEMP_FILE_AGE, remove_stale_work_files

    from .upstream import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "settings.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--timeout-graceful-shutdown", "2"],
        cwd=Path(__file__).resolve().parent.parent, env=subprocess_env,
        stdout=open(tmp_path / "uvicorn.log", "wb"), stderr=subprocess.STDOUT)
    # without a graceful-shutdown timeout it would wait for the upstream
    stop_while_a_request_waits(threaded_upstream, "on_demand", server, port, signal.SIGTERM)
    assert b"timeout graceful shutdown exceeded" in (tmp_path / "uvicorn.log").read_bytes()
    serving = Path(settings.MEDIA_ROOT) / ".working" / "serving"
    assert list(serving.glob("serve-*.part")), "the on_demand download left no partial file"
    for part in serving.glob("serve-*.part"):
        old = time.time() - STALE_TEMP_FILE_AGE.total_seconds() - 60
        os.utime(part, (old, old))
    remove_stale_work_files(ArtifactStore())
    assert list(serving.glob("serve-*")) == []

async def test_streamed_keeps_nothing_on_disk_and_a_late_client_gets_its_own_download(
        upstream, asgi_server, settings):
    from pulp_downloads.content import streaming

    gate = upstream.gate()
    url = upstream.add_repo("repo", {"a.bin": DATA})
    upstream.faults["repo/a.bin"] += [held_body_fault(gate, 1 << 20)] * 2
    remote = await remote_with_units(url, "streamed", {"a.bin": DATA})
    serving = Path(settings.PULP_DOWNLOADS["WORKING_DIRECTORY"]) / "serving"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        first = await session.get(f"{asgi_server}/content/{remote.name}/a.bin")
        head = await first.content.readexactly(512 * 1024)
        flight = next(iter(streaming._flights.values()))
        # Once its only client read them, the first bytes are gone from memory...
        await eventually(lambda: flight.memory_start > 0, "the bytes read to be dropped")
        assert not serving.exists() or not list(serving.iterdir()), "streamed bytes hit the disk"
        # ...so a client asking now gets a download of its own, from the first byte.
        second = asyncio.ensure_future(get(f"{asgi_server}/content/{remote.name}/a.bin"))
        await eventually(lambda: upstream.hits["repo/a.bin"] == 2, "a second download")
        gate.open()
        assert head + await first.read() == DATA
        first.release()
        status, _, body = await second
    assert status == 200 and body == DATA
    assert not await Artifact.objects.aexists()


async def test_a_streamed_download_goes_at_the_pace_of_its_client(
        upstream, asgi_server, monkeypatch):
    from pulp_downloads.content import streaming

    monkeypatch.setattr(streaming, "WINDOW", 256 * 1024)
    data = os.urandom(32 * 1024 * 1024)
    url = upstream.add_repo("repo", {"big.bin": data})
    remote = await remote_with_units(url, "streamed", {"big.bin": data})
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(f"{asgi_server}/content/{remote.name}/big.bin") as response:
            head = await response.content.readexactly(1000)
            flight = next(iter(streaming._flights.values()))
            # The client stops reading: once the socket buffers are full, the download waits
            # a window ahead of what the client took...
            await eventually(lambda: flight.readers and flight.received - min(
                reader.offset for reader in flight.readers) > streaming.WINDOW,
                "the download to get a window ahead of its client")
            # ...and stays there, with at most the window (and the block that arrived last)
            # in memory. (The pauses give a download that would not wait the time to run
            # ahead: they wait for nothing to happen, so a slow machine cannot fail them.)
            held = []
            for _ in range(10):
                await asyncio.sleep(0.05)
                held.append(flight.received - flight.memory_start)
            assert flight.received < len(data), "the download ran ahead of its only client"
            # Beyond the window, memory holds the blocks not yet written to the fallback
            # file: at most a lane's queue, the block its writer holds and the block being
            # handed over (a loaded machine's writer thread lags that far, never further).
            from pulp_downloads.download.defaults import BLOCK_SIZE
            from pulp_downloads.download.pipeline import LANE_DEPTH

            assert max(held) <= streaming.WINDOW + (LANE_DEPTH + 2) * BLOCK_SIZE
            assert head + await response.read() == data


async def test_an_on_demand_client_that_falls_behind_reads_the_rest_from_the_file(
        upstream, asgi_server, monkeypatch):
    from pulp_downloads.content import streaming

    monkeypatch.setattr(streaming, "WINDOW", 256 * 1024)
    data = os.urandom(32 * 1024 * 1024)
    url = upstream.add_repo("repo", {"big.bin": data})
    remote = await remote_with_units(url, "on_demand", {"big.bin": data})
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(f"{asgi_server}/content/{remote.name}/big.bin") as response:
            head = await response.content.readexactly(1000)
            flight = next(iter(streaming._flights.values()))
            # The download completes without waiting for its slow client, keeping at most
            # the window in memory; the client then gets the rest from the stored file.
            await eventually(lambda: flight.done.done(), "the download to end without its client")
            assert flight.received == len(data)
            assert flight.received - flight.memory_start <= streaming.WINDOW
            assert head + await response.read() == data
    assert await Artifact.objects.filter(sha256=sha256(data)).aexists()


async def test_every_artifact_comes_through_the_store_of_a_download(upstream, asgi_server):
    """The sync, the content app (on_demand) and a plugin's download built with a store all
    make their Artifacts through the store given to the download, and each such download
    sends download_finished."""
    from pulp_downloads.download import DownloaderFactory, RemoteConfig
    from pulp_downloads.signals import download_finished
    from pulp_downloads.storage import ArtifactStore
    from pulp_downloads.sync import async_sync_remote

    seen: list[tuple[str, bool]] = []

    async def spy(sender, downloader, result, **kwargs):
        seen.append((result.digests["sha256"], downloader.store is not None))

    synced = {f"s{i}.bin": os.urandom(1000 * (i + 1)) for i in range(3)}
    synced["big.bin"] = os.urandom(300 * 1024)  # through a temporary file, not memory
    served, fetched = os.urandom(5000), os.urandom(7000)
    url = upstream.add_repo("repo", {**synced, "served.bin": served, "fetched.bin": fetched})
    download_finished.connect(spy, dispatch_uid="test-spy")
    try:
        await async_sync_remote(await sync_to_async(Remote.objects.create)(name="s", url=url))
        remote = await remote_with_units(url, "on_demand", {"served.bin": served})
        status, _, body = await get(f"{asgi_server}/content/{remote.name}/served.bin")
        assert status == 200 and body == served
        await eventually(lambda: (sha256(served), True) in seen, "the signal for served.bin")
        async with DownloaderFactory(RemoteConfig(url=url), settings=None) as factory:
            result = await factory.build("fetched.bin", store=ArtifactStore()).run()
        assert result.artifact.sha256 == sha256(fetched)
    finally:
        download_finished.disconnect(dispatch_uid="test-spy")
    await wait_for_artifact(sha256(served))  # committed after the signal
    stored = {a.sha256 async for a in Artifact.objects.all()}
    assert stored == {sha256(d) for d in [*synced.values(), served, fetched]}
    assert stored == {sha for sha, saved in seen if saved}


def test_two_content_processes_fetch_a_missing_on_demand_file_once(
        threaded_upstream, subprocess_env, tmp_path):
    """Two uvicorn worker processes, many clients at once asking for the same file not stored
    yet: one process downloads it, the other waits for its Artifact; the upstream sees one
    GET and every client gets the file."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from urllib.request import urlopen

    from .upstream import free_port, wait_for_port

    data = os.urandom(2 * 1024 * 1024)
    url = threaded_upstream.add_repo("repo", {"a.bin": data})
    threaded_upstream.faults["repo/a.bin"].append(delay_fault(1.0))
    remote = Remote.objects.create(name="shared", url=url, policy="on_demand")
    ContentUnit.objects.create(remote=remote, relative_path="a.bin", sha256=sha256(data),
                               size=len(data))
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "settings.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning", "--workers", "2"],
        cwd=Path(__file__).resolve().parent.parent, env=subprocess_env,
        stdout=open(tmp_path / "uvicorn.log", "wb"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port)

        def fetch(_):
            with urlopen(f"http://127.0.0.1:{port}/content/shared/a.bin", timeout=60) as reply:
                return reply.status, reply.read()

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(fetch, range(12)))
    finally:
        server.terminate()
        server.wait(30)
    assert all(status == 200 and body == data for status, body in answers)
    assert threaded_upstream.hits["repo/a.bin"] == 1
    assert Artifact.objects.filter(sha256=sha256(data)).count() == 1
    assert not ContentFlight.objects.exists(), "a claim was left behind"


async def test_a_file_claimed_by_another_process_is_awaited_then_served_stored(
        upstream, asgi_server, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    from pulp_downloads.storage import ArtifactStore

    data = DATA[:50_000]
    url = upstream.add_repo("repo", {"a.bin": data})
    remote = await remote_with_units(url, "on_demand", {"a.bin": data})
    unit = await ContentUnit.objects.aget(remote=remote)
    await ContentFlight.objects.acreate(unit=unit, owner="elsewhere:1",
                                        expires=timezone.now() + timedelta(seconds=60))
    client = asyncio.ensure_future(get(f"{asgi_server}/content/{remote.name}/a.bin"))
    from pulp_downloads.content import streaming

    await eventually(lambda: streaming._claiming or client.done(), "the request to wait")
    assert not client.done() and not upstream.requests, "the claim was not respected"
    # The other process stores the file and links the unit: the waiting client gets it.
    temp = tmp_path / "a.part"
    temp.write_bytes(data)
    artifact = await sync_to_async(ArtifactStore().store_file)(temp)
    await ContentUnit.objects.filter(pk=unit.pk).aupdate(artifact=artifact)
    status, _, body = await asyncio.wait_for(client, 20)
    assert status == 200 and body == data
    assert upstream.hits["repo/a.bin"] == 0


async def test_an_expired_claim_of_a_dead_process_is_taken_over(upstream, asgi_server):
    from datetime import timedelta

    from django.utils import timezone

    data = DATA[:50_000]
    url = upstream.add_repo("repo", {"a.bin": data})
    remote = await remote_with_units(url, "on_demand", {"a.bin": data})
    unit = await ContentUnit.objects.aget(remote=remote)
    await ContentFlight.objects.acreate(unit=unit, owner="dead:1",
                                        expires=timezone.now() - timedelta(seconds=1))
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == data and upstream.hits["repo/a.bin"] == 1
    await eventually(lambda: _no_claim_left(), "the claim to be released")


async def _no_claim_left() -> bool:
    return not await ContentFlight.objects.aexists()
