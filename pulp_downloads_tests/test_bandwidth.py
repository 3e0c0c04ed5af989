"""Bandwidth caps: a Remote's ``max_bandwidth`` caps the sum of its downloads, the site's
``MAX_BANDWIDTH`` caps every download of a process; a capped download still reads its
connection often enough to stay within the read timeout.

These tests measure time on purpose (the cap *is* a time): the bounds are wide (15 %) and
the rates low (a few MB/s over loopback), so a loaded machine does not break them.
"""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from pulp_downloads.download.config import LibrarySettings
from pulp_downloads.models import Artifact, Remote
from pulp_downloads.sync import sync_remote

from .upstream import LOOPBACK_ALLOWED, sha256

MB = 1_000_000


@pytest.mark.django_db(transaction=True)
def test_remote_cap_holds_a_20_mb_sync_to_5_seconds(threaded_upstream):
    files = {f"pool/{i}.bin": os.urandom(2 * MB) for i in range(10)}
    url = threaded_upstream.add_repo("capped", files)
    remote = Remote.objects.create(name="capped", url=url, max_bandwidth=4 * MB,
                                   download_concurrency=5)
    started = time.monotonic()
    summary = sync_remote(remote)
    elapsed = time.monotonic() - started
    assert summary.downloaded == 10 and Artifact.objects.count() == 10
    assert 5.0 * 0.85 <= elapsed <= 5.0 * 1.15, f"20 MB at 4 MB/s took {elapsed:.2f} s"


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
    assert 2.0 * 0.85 <= elapsed <= 2.0 * 1.15, f"4 MB at 2 MB/s took {elapsed:.2f} s"


async def test_capped_download_keeps_reading_within_the_read_timeout(upstream, make_factory):
    body = os.urandom(int(1.5 * MB))
    url = upstream.add("slow.bin", body)
    factory = make_factory(upstream.url, max_bandwidth=500_000, sock_read_timeout=1,
                           max_retries=0)
    started = time.monotonic()
    result = await factory.build(url, expected_digests={"sha256": sha256(body)}).run()
    elapsed = time.monotonic() - started
    assert result.size == len(body)
    assert elapsed >= 3.0 * 0.85  # capped: 1.5 MB at 0.5 MB/s
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
