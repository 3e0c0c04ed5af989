"""Bandwidth caps: a Remote's ``max_bandwidth`` caps the sum of its downloads, the site's
``MAX_BANDWIDTH`` caps every download of a process; a capped download still reads its
connection often enough to stay within the read timeout.

What a cap lets through, and when, is checked in the cap's own time (a clock that stands
still and a sleep that records the waits asked for): exact, and the same on any machine.
The downloads through real caps check elapsed time from below only: a cap makes a download
take at least so long, and a slow machine can only make it take longer.
"""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from pulp_downloads.download.bandwidth import (
    PIECE_SECONDS, BandwidthCap, BandwidthCaps, process_cap)
from pulp_downloads.download.config import LibrarySettings
from pulp_downloads.models import Artifact, Remote
from pulp_downloads.sync import sync_remote

from .upstream import LOOPBACK_ALLOWED, sha256

MB = 1_000_000


class StandingClock:
    """A clock that stands still until a test moves it, and a sleep that records each wait
    asked for without spending it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def cap_in_standing_time(rate: int) -> tuple[BandwidthCap, StandingClock]:
    clock = StandingClock()
    return BandwidthCap(rate, clock=clock, sleep=clock.sleep), clock


async def test_a_cap_gives_each_piece_the_next_slot_of_its_length_whoever_takes_it():
    cap, clock = cap_in_standing_time(1000)
    await asyncio.gather(*(cap.take(500) for _ in range(4)))  # four downloads at once
    # The first piece goes at once, each next one half a second (500 bytes at 1000/s) later.
    assert clock.slept == pytest.approx([0.5, 1.0, 1.5])
    clock.now += 10  # an idle cap saves nothing up: no burst after a pause
    await cap.take(250)
    await cap.take(250)
    assert clock.slept[3:] == pytest.approx([0.25])
    assert BandwidthCap(None).piece is None and BandwidthCap(0).rate == 0


async def test_every_cap_applies_and_counts_each_piece_once():
    remote, remote_clock = cap_in_standing_time(MB)
    site, site_clock = cap_in_standing_time(4 * MB)
    caps = BandwidthCaps(remote, site, BandwidthCap(None))
    assert caps.caps == (remote, site) and caps.piece == remote.piece == MB * PIECE_SECONDS
    for _ in range(3):
        await caps.take(MB)
    assert remote_clock.slept == pytest.approx([1.0, 2.0])
    assert site_clock.slept == pytest.approx([0.25, 0.5])
    assert not BandwidthCaps(BandwidthCap(None)) and BandwidthCaps().piece is None


async def test_factories_apply_their_remote_cap_and_share_the_process_cap(make_factory,
                                                                          tmp_path):
    settings = LibrarySettings(max_bandwidth=2 * MB, address_policy=LOOPBACK_ALLOWED,
                               working_directory=tmp_path)
    factories = [make_factory("http://127.0.0.1:9/r/PULP_MANIFEST", max_bandwidth=4 * MB,
                              settings=settings) for _ in range(2)]
    (remote_cap, site_cap), (_, other_site_cap) = (f.context.bandwidth.caps for f in factories)
    assert remote_cap.rate == 4 * MB
    assert site_cap is other_site_cap is process_cap(2 * MB) and site_cap.rate == 2 * MB
    uncapped = make_factory("http://127.0.0.1:9/r/PULP_MANIFEST")
    assert not uncapped.context.bandwidth and uncapped.context.bandwidth.piece is None


async def test_a_capped_download_reads_little_at_a_time_and_counts_each_byte_once(
        upstream, make_factory):
    rate = 200_000  # a read of 1/4 s of it (50 kB) is less than the connection buffers hold
    body = os.urandom(MB)
    url = upstream.add("f", body)
    factory = make_factory(upstream.url, max_bandwidth=rate)
    cap, clock = cap_in_standing_time(rate)
    factory.context.bandwidth = BandwidthCaps(cap)
    result = await factory.build(url, expected_digests={"sha256": sha256(body)}).run()
    assert result.size == len(body)
    # In standing time the n-th piece waits for the pieces before it: the waits give the
    # size of every piece but the last.
    pieces = [round((b - a) * rate) for a, b in zip([0.0, *clock.slept], clock.slept)]
    assert len(pieces) > 10 and all(0 < piece <= rate / 4 for piece in pieces)
    assert len(body) - cap.piece <= round(clock.slept[-1] * rate) < len(body)


@pytest.mark.django_db(transaction=True)
def test_remote_cap_holds_a_20_mb_sync_to_at_least_5_seconds(threaded_upstream):
    files = {f"pool/{i}.bin": os.urandom(2 * MB) for i in range(10)}
    url = threaded_upstream.add_repo("capped", files)
    remote = Remote.objects.create(name="capped", url=url, max_bandwidth=4 * MB,
                                   download_concurrency=5)
    started = time.monotonic()
    summary = sync_remote(remote)
    elapsed = time.monotonic() - started
    assert summary.downloaded == 10 and Artifact.objects.count() == 10
    # The five downloads at once share the cap: the last piece's slot starts at least
    # 20 MB / 4 MB/s (less that piece) after the first.
    assert elapsed >= 20 / 4 - PIECE_SECONDS, f"20 MB at 4 MB/s took {elapsed:.2f} s"


async def test_site_cap_is_shared_by_every_factory_of_the_process(upstream, make_factory,
                                                                   tmp_path):
    data = {upstream.add(f"f{i}", body): body for i, body in
            enumerate(os.urandom(MB) for _ in range(4))}
    settings = LibrarySettings(max_bandwidth=2 * MB, address_policy=LOOPBACK_ALLOWED,
                               working_directory=tmp_path)
    factories = [make_factory(upstream.url, settings=settings) for _ in range(2)]
    started = time.monotonic()
    results = await asyncio.gather(*(
        factories[i % 2].build(url, expected_digests={"sha256": sha256(body)}).run()
        for i, (url, body) in enumerate(data.items())))
    elapsed = time.monotonic() - started
    assert len(results) == 4
    assert elapsed >= 4 / 2 - PIECE_SECONDS, f"4 MB at 2 MB/s took {elapsed:.2f} s"


async def test_capped_download_keeps_reading_within_the_read_timeout(upstream, make_factory):
    body = os.urandom(int(1.5 * MB))
    url = upstream.add("slow.bin", body)
    factory = make_factory(upstream.url, max_bandwidth=500_000, sock_read_timeout=1,
                           max_retries=0)
    started = time.monotonic()
    result = await factory.build(url, expected_digests={"sha256": sha256(body)}).run()
    elapsed = time.monotonic() - started
    assert result.size == len(body)
    assert elapsed >= 3.0 - PIECE_SECONDS  # capped: 1.5 MB at 0.5 MB/s
    assert len(upstream.requests) == 1  # one request: no timeout, no retry


def test_bad_caps_are_refused_with_the_field_named(db, settings):
    from django.core.exceptions import ImproperlyConfigured, ValidationError

    from pulp_downloads.conf import app_settings

    remote = Remote(name="bw", url="https://example.test/PULP_MANIFEST", max_bandwidth=10)
    with pytest.raises(ValidationError) as caught:
        remote.full_clean()
    assert "max_bandwidth" in caught.value.message_dict
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "MAX_BANDWIDTH": "fast"}
    with pytest.raises(ImproperlyConfigured, match="MAX_BANDWIDTH"):
        app_settings()
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "MAX_BANDWIDTH": "8000000"}
    assert app_settings().max_bandwidth == 8 * MB


@pytest.mark.django_db(transaction=True)
def test_api_sets_and_validates_max_bandwidth(api_client_for):
    api = api_client_for("remote administrator")
    body = {"name": "bw", "url": "https://example.test/PULP_MANIFEST", "max_bandwidth": 500}
    refused = api.post("/api/remotes/", body, format="json")
    assert refused.status_code == 400 and "max_bandwidth" in refused.json()
    created = api.post("/api/remotes/", {**body, "max_bandwidth": 2 * MB}, format="json")
    assert created.status_code == 201 and created.json()["max_bandwidth"] == 2 * MB
