"""Reading a Remote into download settings; fetch() inside Django views; timeouts."""
from __future__ import annotations

import asyncio
import copy
import math

import pytest
from django.core.exceptions import ImproperlyConfigured

from pulp_downloads.conf import app_settings
from pulp_downloads.download import DownloaderFactory, DownloadTimeout, RemoteConfig, RetryPolicy
from pulp_downloads.download.config import DEFAULT_SOCK_READ_TIMEOUT
from pulp_downloads.models import Remote

from .upstream import sha256, stall_fault
from .waiting import PATIENCE


def test_null_means_default_and_zero_disables_timeouts():
    remote = Remote(name="t", url="http://127.0.0.1/x", sock_read_timeout=None,
                    sock_connect_timeout=0, total_timeout=12, max_retries=0)
    config = RemoteConfig.from_remote(remote)
    assert config.timeouts.sock_read == DEFAULT_SOCK_READ_TIMEOUT, "a stalled server never hangs"
    assert config.timeouts.sock_connect is None
    assert config.timeouts.total == 12
    assert config.max_retries == 0


@pytest.mark.parametrize("attempt", [1, 64, 1025, 10**6])
def test_backoff_stays_finite_and_capped_for_any_retry_number(attempt):
    policy = RetryPolicy()
    for _ in range(20):  # the delay is random: look at several
        delay = policy.backoff(attempt)
        assert math.isfinite(delay) and 0 <= delay <= policy.cap


def test_the_site_default_of_max_retries_has_the_same_maximum(settings):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "DEFAULT_MAX_RETRIES": 101}
    with pytest.raises(ImproperlyConfigured, match=r"DEFAULT_MAX_RETRIES'\] must be from 0 to 100"):
        app_settings()
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "DEFAULT_MAX_RETRIES": 100}
    assert app_settings().default_max_retries == 100


def test_config_hides_secrets_in_repr():
    remote = Remote(name="t", url="http://127.0.0.1/x", username="u", password="pw-HIDDEN",
                    proxy_url="http://127.0.0.1:1", proxy_username="p", proxy_password="px-HIDDEN")
    text = repr(RemoteConfig.from_remote(remote))
    assert "HIDDEN" not in text and "Secret('***')" in text


@pytest.mark.django_db(transaction=True)
async def test_downloads_never_mutate_the_remote(upstream):
    url = upstream.add("repo/f", b"data")
    remote = Remote(name="m", url=upstream.url + "repo/PULP_MANIFEST",
                    headers={"X-A": "1"}, mirrors=[upstream.url + "mirror/"])
    before = copy.deepcopy(remote.__dict__)
    before.pop("_state")
    async with DownloaderFactory(remote, events=None) as factory:
        await factory.build(url).run()
    after = dict(remote.__dict__)
    after.pop("_state")
    assert after == before


async def test_total_timeout_bounds_a_whole_request(upstream, make_factory):
    url = upstream.add("f", b"x" * 100_000)
    upstream.faults["f"].append(stall_fault(upstream.gate()))  # until the test ends
    with pytest.raises(DownloadTimeout):
        await asyncio.wait_for(make_factory(upstream.url, total_timeout=0.3, sock_read_timeout=0,
                                            max_retries=0).build(url).run(), PATIENCE)


@pytest.mark.urls("pulp_downloads_tests.urls")
async def test_fetch_works_inside_a_sync_django_view_served_asynchronously(upstream):
    from django.test import AsyncClient

    data = b"view data" * 1000
    url = upstream.add("v", data)
    response = await AsyncClient().get("/test-fetch/", {"url": url})
    assert response.status_code == 200
    assert response.json() == {"sha256": sha256(data), "size": len(data)}
