"""Fault cases: retries, Retry-After, truncation, stalls, mirrors, rate limit, concurrency."""
from __future__ import annotations

import asyncio
import dataclasses
import os
import time

import pytest
from aiohttp import web

from pulp_downloads.download import (
    DownloadTimeout,
    HttpError,
    IncompleteDownload,
    NetworkError,
    NotFound,
    RetryPolicy,
)
from pulp_downloads.download.http import parse_retry_after

from .upstream import FAST_RETRIES, free_port, sha256, stall_fault, status_fault, truncate_fault
from .waiting import PATIENCE, eventually

DATA = os.urandom(2 * 1024 * 1024 + 5)


async def test_retries_503_then_succeeds(upstream, make_factory):
    url = upstream.add("f", DATA)
    upstream.faults["f"] += [status_fault(503), status_fault(502)]
    result = await make_factory(upstream.url, max_retries=3).build(
        url, expected_digests={"sha256": sha256(DATA)}).run()
    assert result.size == len(DATA)
    assert upstream.hits["f"] == 3


@pytest.mark.parametrize("status", [408, 429, 500, 504])
async def test_recoverable_statuses_are_retried(upstream, make_factory, status):
    url = upstream.add("f", b"ok")
    upstream.faults["f"].append(status_fault(status))
    await make_factory(upstream.url, max_retries=1).build(url).run()
    assert upstream.hits["f"] == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
async def test_client_errors_are_not_retried(upstream, make_factory, status):
    url = upstream.add("f", b"ok")
    upstream.faults["f"].append(status_fault(status))
    with pytest.raises(HttpError) as info:
        await make_factory(upstream.url, max_retries=3).build(url).run()
    assert info.value.status == status
    assert upstream.hits["f"] == 1


async def test_max_retries_zero_means_one_attempt(upstream, make_factory):
    url = upstream.add("f", b"ok")
    upstream.faults["f"] += [status_fault(503), status_fault(503)]
    with pytest.raises(HttpError) as info:
        await make_factory(upstream.url, max_retries=0).build(url).run()
    assert info.value.status == 503 and info.value.url == url
    assert upstream.hits["f"] == 1


async def test_gives_up_after_max_retries(upstream, make_factory):
    url = upstream.add("f", b"ok")
    upstream.faults["f"] += [status_fault(500)] * 5
    with pytest.raises(HttpError):
        await make_factory(upstream.url, max_retries=2).build(url).run()
    assert upstream.hits["f"] == 3


async def test_429_retry_after_is_honoured(upstream, make_factory):
    url = upstream.add("f", b"ok")
    upstream.faults["f"].append(status_fault(429, {"Retry-After": "1"}))
    started = time.monotonic()
    await make_factory(upstream.url, max_retries=1).build(url).run()
    assert time.monotonic() - started >= 0.9, "waited as long as Retry-After asked"
    assert upstream.hits["f"] == 2


def test_retry_after_parses_seconds_and_http_dates():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < parse_retry_after(future) <= 31


def test_retry_after_is_capped_and_backoff_is_jittered_and_capped():
    policy = RetryPolicy(base=1, cap=4, retry_after_cap=10)
    assert policy.backoff(1, retry_after=3600) == 10
    assert all(0 <= policy.backoff(n) <= 4 for n in range(1, 20) for _ in range(20))
    assert len({round(policy.backoff(3), 6) for _ in range(20)}) > 1


async def test_no_concurrency_slot_is_held_while_waiting_to_retry(upstream, make_factory):
    slow = upstream.add("slow", b"slow")
    fast = upstream.add("fast", b"fast")
    upstream.faults["slow"].append(status_fault(503, {"Retry-After": "600"}))
    factory = make_factory(upstream.url, download_concurrency=1, max_retries=1,
                           retry_policy=dataclasses.replace(FAST_RETRIES, retry_after_cap=600))
    waiting = asyncio.ensure_future(factory.build(slow).run())
    try:
        # "slow" got its 503 and now waits ten minutes to retry...
        await eventually(lambda: upstream.hits["slow"], "the first request of 'slow'")
        # ...while "fast" gets the only slot (it would wait those ten minutes for it).
        result = await asyncio.wait_for(factory.build(fast).run(), PATIENCE)
        assert result.size == 4 and not waiting.done()
    finally:
        waiting.cancel()
    assert upstream.hits["slow"] == 1


async def test_truncated_body_is_resumed_with_a_range_request(upstream, make_factory):
    url = upstream.add("f", DATA)
    upstream.faults["f"].append(truncate_fault(keep=1024 * 1024))
    result = await make_factory(upstream.url, max_retries=2).build(
        url, expected_digests={"sha256": sha256(DATA)}, expected_size=len(DATA)).run()
    assert result.path.read_bytes() == DATA
    second = [r for r in upstream.requests if r[1] == "f"][1][2]
    assert second["Range"].startswith("bytes=")
    assert int(second["Range"].split("=")[1].rstrip("-")) > 0
    assert second["If-Range"]


async def test_truncated_body_without_retries_is_incomplete_download(upstream, make_factory,
                                                                     tmp_path):
    url = upstream.add("f", DATA)
    upstream.faults["f"].append(truncate_fault(keep=1000))
    with pytest.raises(IncompleteDownload) as info:
        await make_factory(upstream.url, max_retries=0).build(url).run()
    assert info.value.url == url


# The stalled answers below stall until the test ends: only the read timeout can end them
# (without one, the test fails after PATIENCE seconds).
async def test_stalled_read_times_out_then_retry_succeeds(upstream, make_factory):
    url = upstream.add("f", DATA)
    upstream.faults["f"].append(stall_fault(upstream.gate()))
    result = await asyncio.wait_for(make_factory(
        upstream.url, sock_read_timeout=1, max_retries=1).build(
        url, expected_digests={"sha256": sha256(DATA)}).run(), PATIENCE)
    assert result.size == len(DATA)
    assert upstream.hits["f"] == 2


async def test_stalled_read_without_retries_raises_timeout(upstream, make_factory):
    url = upstream.add("f", DATA)
    upstream.faults["f"].append(stall_fault(upstream.gate()))
    with pytest.raises(DownloadTimeout):
        await asyncio.wait_for(make_factory(
            upstream.url, sock_read_timeout=1, max_retries=0).build(url).run(), PATIENCE)


async def test_connection_refused_is_a_network_error_in_plain_words(make_factory):
    port = free_port()
    url = f"http://127.0.0.1:{port}/f"
    with pytest.raises(NetworkError) as caught:
        await make_factory(url, max_retries=1).build(url).run()
    message = str(caught.value)
    assert message == (f"cannot connect to 127.0.0.1:{port}: connection refused (nothing "
                       f"listens on that port) ({url})")
    assert "ssl" not in message and "Connect call failed" not in message


async def test_dead_primary_falls_back_to_live_mirror(mirror, make_factory):
    dead = f"http://127.0.0.1:{free_port()}/repo/"
    mirror.add("repo/f", DATA)
    factory = make_factory(dead + "PULP_MANIFEST", mirrors=[mirror.url + "repo/"], max_retries=1)
    result = await factory.build(dead + "f", expected_digests={"sha256": sha256(DATA)}).run()
    assert result.final_url == mirror.url + "repo/f"
    assert result.url == dead + "f"


async def test_failed_mirror_is_skipped_by_later_downloads(upstream, mirror, make_factory):
    for name in ("a", "b"):
        upstream.add(f"repo/{name}", b"x")
        upstream.faults[f"repo/{name}"] += [status_fault(503)] * 10
        mirror.add(f"repo/{name}", b"x")
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST",
                           mirrors=[mirror.url + "repo/"], max_retries=1)
    first = await factory.build("a").run()
    assert first.final_url.startswith(mirror.url)
    assert upstream.hits["repo/a"] == 2
    second = await factory.build("b").run()
    assert second.final_url.startswith(mirror.url)
    assert upstream.hits["repo/b"] == 0, "the unhealthy primary is skipped during cool-down"


async def test_not_found_on_primary_tries_mirror(upstream, mirror, make_factory):
    mirror.add("repo/only-here", b"m")
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST", mirrors=[mirror.url + "repo/"])
    result = await factory.build("only-here").run()
    assert result.final_url == mirror.url + "repo/only-here"
    with pytest.raises(NotFound):
        await factory.build("nowhere").run()


async def test_mirrorlist_is_fetched_once_and_used(upstream, mirror, make_factory):
    upstream.add("mirrors.txt", f"# our mirrors\n\n{mirror.url}repo/  # the good one\nnot a url\n".encode())
    for name in ("a", "b", "c"):
        mirror.add(f"repo/{name}", name.encode())
    dead = f"http://127.0.0.1:{free_port()}/repo/"
    factory = make_factory(dead + "PULP_MANIFEST", mirrorlist_url=upstream.url + "mirrors.txt",
                           max_retries=0)
    results = await asyncio.gather(*(factory.build(n).run() for n in ("a", "b", "c")))
    assert all(r.final_url.startswith(mirror.url) for r in results)
    assert upstream.hits["mirrors.txt"] == 1


async def test_mirrorlist_failure_falls_back_to_configured_urls(upstream, make_factory):
    upstream.add("repo/f", b"f")
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST",
                           mirrorlist_url=upstream.url + "missing-list")
    result = await factory.build("f").run()
    assert result.final_url == upstream.url + "repo/f"


async def test_concurrency_is_bounded_by_download_concurrency(upstream, make_factory):
    for i in range(12):
        upstream.add(f"f{i}", os.urandom(300_000))
    factory = make_factory(upstream.url, download_concurrency=3)
    await asyncio.gather(*(factory.build(f"f{i}").run() for i in range(12)))
    assert 1 <= upstream.max_in_flight <= 3


async def test_rate_limit_spaces_requests(upstream, make_factory):
    for i in range(5):
        upstream.add(f"r{i}", b"r")
    factory = make_factory(upstream.url, rate_limit=10)
    started = time.monotonic()
    await asyncio.gather(*(factory.build(f"r{i}").run() for i in range(5)))
    assert time.monotonic() - started >= 0.35, "5 requests at 10/s span at least 0.4s"


async def test_connections_are_reused(upstream, make_factory):
    for i in range(6):
        upstream.add(f"k{i}", b"k")
    factory = make_factory(upstream.url, download_concurrency=1)
    for i in range(6):
        await factory.build(f"k{i}").run()
    session = await factory.context.session()
    assert len(session.connector._conns) == 1


def wrong_part_fault(shift: int):
    """Answer a resume with a 206 whose part starts ``shift`` bytes past the offset asked."""
    async def fault(request, upstream):
        data = upstream.files[request.match_info["path"]]
        start = int(request.headers["Range"].split("=")[1].rstrip("-")) + shift
        return web.Response(status=206, body=data[start:], headers={
            "Accept-Ranges": "bytes", "ETag": f'"{sha256(data)[:16]}"',
            "Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
    return fault


async def test_a_resume_answered_from_another_offset_starts_again_from_byte_0(
        upstream, make_factory):
    url = upstream.add("f", DATA)
    upstream.faults["f"] += [truncate_fault(keep=1024 * 1024), wrong_part_fault(shift=4096)]
    # No expected digests: only the download's own care keeps the part out of the file.
    result = await make_factory(upstream.url, max_retries=2).build(url).run()
    assert result.path.read_bytes() == DATA
    assert result.size == len(DATA) and result.digests["sha256"] == sha256(DATA)
    ranges = [r[2].get("Range") for r in upstream.requests if r[1] == "f"]
    assert ranges[0] is None and ranges[1].startswith("bytes=") and ranges[2] is None


async def test_a_part_answered_to_a_whole_request_is_never_taken_for_the_file(
        upstream, make_factory):
    url = upstream.add("f", DATA)

    async def part(request, upstream):
        return web.Response(status=206, body=DATA[:1000], headers={
            "Content-Range": f"bytes 0-999/{len(DATA)}"})
    upstream.faults["f"].append(part)
    with pytest.raises(IncompleteDownload):
        await make_factory(upstream.url, max_retries=0).build(url).run()
    result = await make_factory(upstream.url, max_retries=1).build(url).run()
    assert result.path.read_bytes() == DATA
