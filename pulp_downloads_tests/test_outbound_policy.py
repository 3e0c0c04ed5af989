"""The outbound address policy: denied peer addresses are refused before any request.

Every test here contacts loopback only: the policy is exercised by denying loopback (the
default deny list does) or one loopback address, never by pointing at another network.
"""
from __future__ import annotations

import pytest
from aiohttp import web
from django.core.exceptions import ImproperlyConfigured

from pulp_downloads.download import (
    AddressNotAllowed,
    AddressPolicy,
    DownloaderFactory,
    HttpError,
    LibrarySettings,
    RemoteConfig,
)

from .upstream import FAST_RETRIES, Upstream, free_port, status_fault


def policy_settings(tmp_path, **policy) -> LibrarySettings:
    return LibrarySettings(working_directory=tmp_path, address_policy=AddressPolicy(**policy))


def test_default_policy_denies_loopback_link_local_and_multicast_but_not_private_ranges():
    policy = AddressPolicy()  # pure address checks: nothing is contacted here
    for denied in ("127.0.0.1", "127.9.9.9", "::1", "169.254.169.254", "fe80::1", "0.0.0.0",
                   "224.0.0.1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"):
        assert not policy.allows(denied), denied
    for allowed in ("10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1", "8.8.8.8"):
        assert policy.allows(allowed), allowed


def test_default_policy_denies_shared_address_space_and_the_ipv6_metadata_address():
    policy = AddressPolicy()
    for denied in ("100.64.0.1", "100.100.100.200", "100.127.255.254", "fd00:ec2::254",
                   "::ffff:100.100.100.200"):
        assert not policy.allows(denied), denied
    for allowed in ("100.63.255.255", "100.128.0.0", "fd00:ec2::253", "fd00:ec2::255"):
        assert policy.allows(allowed), allowed


def test_the_allow_list_overrides_the_deny_list():
    policy = AddressPolicy(allowed=["127.0.0.0/8"])
    assert policy.allows("127.0.0.1") and policy.allows("::ffff:127.0.0.1")
    assert not policy.allows("::1") and not policy.allows("169.254.169.254")
    operator = AddressPolicy(denied=["10.0.0.0/8"], allowed=["10.1.0.0/16"])
    assert not operator.allows("10.2.0.1") and operator.allows("10.1.0.1")


async def test_a_denied_upstream_fails_at_once_and_receives_nothing(upstream, tmp_path):
    url = upstream.add("repo/a.bin", b"data")
    config = RemoteConfig(url=upstream.url + "repo/PULP_MANIFEST", max_retries=5)
    async with DownloaderFactory(config, settings=policy_settings(tmp_path), events=None,
                                 retry_policy=FAST_RETRIES) as factory:
        downloader = factory.build(url)
        with pytest.raises(AddressNotAllowed) as info:
            await downloader.run()
    message = str(info.value)
    assert "127.0.0.1" in message and "not allowed" in message
    assert "PULP_DOWNLOADS_DENIED_NETWORKS" in message
    assert downloader.attempts == 1  # never retried
    assert upstream.requests == []
    assert not list(tmp_path.iterdir())  # nothing written


async def test_a_name_that_resolves_to_a_denied_address_is_caught(upstream, tmp_path):
    upstream.add("repo/a.bin", b"data")
    port = upstream.server.port
    config = RemoteConfig(url=f"http://localhost:{port}/repo/PULP_MANIFEST")
    async with DownloaderFactory(config, settings=policy_settings(tmp_path), events=None,
                                 retry_policy=FAST_RETRIES) as factory:
        with pytest.raises(AddressNotAllowed, match="not allowed"):
            await factory.build("a.bin").run()
    assert upstream.requests == []


async def test_a_redirect_to_a_denied_address_is_caught(upstream, aiohttp_server, tmp_path):
    inner = Upstream()
    inner.server = await aiohttp_server(inner.app(), host="127.0.0.2")
    target = inner.add("secret.txt", b"internal")

    async def redirect(request, up):
        raise web.HTTPFound(target)

    upstream.add("repo/a.bin", b"data")
    upstream.faults["repo/a.bin"].append(redirect)
    config = RemoteConfig(url=upstream.url + "repo/PULP_MANIFEST")
    settings = policy_settings(tmp_path, denied=["127.0.0.2/32"])
    async with DownloaderFactory(config, settings=settings, events=None,
                                 retry_policy=FAST_RETRIES) as factory:
        with pytest.raises(AddressNotAllowed, match="127.0.0.2"):
            await factory.build("a.bin").run()
    assert upstream.hits["repo/a.bin"] == 1
    assert inner.requests == []


async def test_a_proxy_at_a_denied_address_is_refused(upstream, tmp_path):
    upstream.add("repo/a.bin", b"data")
    config = RemoteConfig(url="http://127.0.0.3:9/repo/PULP_MANIFEST",
                          proxy_url=upstream.url)  # the "proxy" is the upstream: never asked
    settings = policy_settings(tmp_path, denied=["127.0.0.0/8"])
    async with DownloaderFactory(config, settings=settings, events=None,
                                 retry_policy=FAST_RETRIES) as factory:
        with pytest.raises(AddressNotAllowed, match="127.0.0.1"):
            await factory.build("a.bin").run()
    assert upstream.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_sync_with_loopback_denied_fails_with_the_policy_error(settings, threaded_upstream):
    from pulp_downloads.models import Remote
    from pulp_downloads.tasks import run_sync_now

    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "ALLOWED_NETWORKS": []}
    url = threaded_upstream.add_repo("repo", {"a.bin": b"aaa"})
    remote = Remote.objects.create(name="denied", url=url)
    task = run_sync_now(remote)
    assert task.state == "failed"
    assert "not allowed by the outbound address policy" in task.error
    assert threaded_upstream.requests == []


def test_bad_networks_in_settings_are_a_clear_error(settings):
    from pulp_downloads.conf import app_settings

    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "ALLOWED_NETWORKS": ["127.0.0.0/33"]}
    with pytest.raises(ImproperlyConfigured, match="ALLOWED_NETWORKS.*127.0.0.0/33"):
        app_settings()


def test_the_environment_fills_the_setting(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = dict(os.environ, PULP_DOWNLOADS_DENIED_NETWORKS="10.0.0.0/8, 127.0.0.0/8",
               PULP_DOWNLOADS_ALLOWED_NETWORKS="127.0.0.1/32")
    code = ("import settings, json; c = settings.PULP_DOWNLOADS; "
            "print(json.dumps([c['DENIED_NETWORKS'], c['ALLOWED_NETWORKS']]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, timeout=60, check=True)
    assert json.loads(out.stdout) == [["10.0.0.0/8", "127.0.0.0/8"], ["127.0.0.1/32"]]



# --- failover: a mirror (or the primary) on a denied address is skipped -------------------------
@pytest.fixture
async def denied_upstream(aiohttp_server):
    """An upstream on 127.0.0.2, which :func:`deny_second_loopback` denies."""
    up = Upstream()
    up.server = await aiohttp_server(up.app(), host="127.0.0.2")
    return up


def deny_second_loopback(tmp_path) -> LibrarySettings:
    return policy_settings(tmp_path, denied=["127.0.0.2/32"])


async def test_a_primary_on_a_denied_address_is_skipped_for_the_mirror(
        denied_upstream, upstream, tmp_path, caplog):
    denied_upstream.add("repo/a.bin", b"primary")
    upstream.add("repo/a.bin", b"mirror")
    upstream.add("repo/b.bin", b"mirror b")
    primary = denied_upstream.url + "repo/"
    config = RemoteConfig(url=primary + "PULP_MANIFEST", mirrors=(upstream.url + "repo/",),
                          max_retries=3)
    async with DownloaderFactory(config, settings=deny_second_loopback(tmp_path), events=None,
                                 retry_policy=FAST_RETRIES) as factory:
        with caplog.at_level("WARNING", logger="pulp_downloads.download.mirrors"):
            first = factory.build("a.bin")
            result = await first.run()
        assert result.final_url == upstream.url + "repo/a.bin"
        assert first.attempts == 2  # the refused primary was not retried
        assert factory.context.mirrors.candidates(primary + "b.bin")[-1] == primary + "b.bin"
        second = factory.build("b.bin")
        assert (await second.run()).final_url == upstream.url + "repo/b.bin"
        assert second.attempts == 1  # the unhealthy primary now comes last
    assert denied_upstream.requests == []
    assert [r.getMessage() for r in caplog.records] == [
        f"mirror {primary} marked unhealthy for 60s: connecting to 127.0.0.2 is not allowed "
        "by the outbound address policy (PULP_DOWNLOADS_DENIED_NETWORKS / "
        "PULP_DOWNLOADS_ALLOWED_NETWORKS)"]


async def test_a_denied_mirror_is_skipped_and_the_failure_says_why(
        denied_upstream, upstream, tmp_path):
    upstream.add("repo/a.bin", b"data")
    upstream.faults["repo/a.bin"].append(status_fault(500))
    denied_upstream.add("repo/a.bin", b"data")
    config = RemoteConfig(url=upstream.url + "repo/PULP_MANIFEST", max_retries=0,
                          mirrors=(denied_upstream.url + "repo/",))
    settings = deny_second_loopback(tmp_path)
    settings = LibrarySettings(working_directory=tmp_path, mirror_ranking=False,
                               address_policy=settings.address_policy)
    async with DownloaderFactory(config, settings=settings, events=None,
                                 retry_policy=FAST_RETRIES) as factory:
        with pytest.raises(HttpError) as info:
            await factory.build("a.bin").run()
    assert info.value.status == 500
    assert str(info.value) == (
        f"HTTP 500 Internal Server Error ({upstream.url}repo/a.bin); skipped "
        f"{denied_upstream.url}repo/a.bin: connecting to 127.0.0.2 is not allowed by the "
        "outbound address policy (PULP_DOWNLOADS_DENIED_NETWORKS / "
        "PULP_DOWNLOADS_ALLOWED_NETWORKS)")
    assert info.value.skipped == (f"{denied_upstream.url}repo/a.bin: connecting to 127.0.0.2 "
                                  "is not allowed by the outbound address policy "
                                  "(PULP_DOWNLOADS_DENIED_NETWORKS / "
                                  "PULP_DOWNLOADS_ALLOWED_NETWORKS)",)
    assert denied_upstream.requests == []


async def test_when_every_candidate_is_denied_the_policy_error_names_each(upstream, tmp_path):
    upstream.add("repo/a.bin", b"data")
    other = f"http://127.0.0.3:{upstream.server.port}/repo/"
    config = RemoteConfig(url=upstream.url + "repo/PULP_MANIFEST", mirrors=(other,))
    settings = policy_settings(tmp_path, denied=["127.0.0.0/8"])
    async with DownloaderFactory(config, settings=settings, events=None,
                                 retry_policy=FAST_RETRIES) as factory:
        downloader = factory.build("a.bin")
        with pytest.raises(AddressNotAllowed) as info:
            await downloader.run()
    message = str(info.value)
    assert "connecting to 127.0.0.1 is not allowed" in message
    assert f"skipped {other}a.bin: connecting to 127.0.0.3 is not allowed" in message
    assert downloader.attempts == 2
    assert upstream.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_sync_whose_primary_is_denied_is_served_by_its_mirror(settings, threaded_upstream):
    from pulp_downloads.models import Remote
    from pulp_downloads.tasks import run_sync_now

    # The default deny list holds 127.0.0.0/8: only 127.0.0.1 is let through here.
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "ALLOWED_NETWORKS": ["127.0.0.1/32"]}
    threaded_upstream.add_repo("repo", {"a.bin": b"aaa", "b.bin": b"bbb"})
    remote = Remote.objects.create(
        name="denied-primary", url=f"http://127.0.0.2:{free_port()}/repo/PULP_MANIFEST",
        mirrors=[threaded_upstream.url + "repo/"])
    task = run_sync_now(remote)
    assert task.state == "completed", task.error
    assert threaded_upstream.hits["repo/PULP_MANIFEST"] == 1
    assert threaded_upstream.hits["repo/a.bin"] == threaded_upstream.hits["repo/b.bin"] == 1


# --- what content clients are told ----------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_the_content_502_says_refused_by_policy_without_the_address(
        settings, asgi_server, caplog):
    from .content_app import get, remote_with_units

    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "ALLOWED_NETWORKS": ["127.0.0.1/32"]}
    url = f"http://127.0.0.2:{free_port()}/repo/PULP_MANIFEST"
    remote = await remote_with_units(url, "streamed", {"a.bin": b"a"}, max_retries=0)
    with caplog.at_level("WARNING", logger="pulp_downloads"):
        status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 502
    assert body == (b"Upstream failure for a.bin: the upstream was refused by the outbound "
                    b"address policy (see the server log)\n")
    assert any("127.0.0.2 is not allowed" in r.getMessage() for r in caplog.records)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_the_content_502_of_a_failed_mirror_counts_the_refused_ones(
        settings, upstream, asgi_server):
    from .content_app import get, remote_with_units

    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "ALLOWED_NETWORKS": ["127.0.0.1/32"]}
    upstream.add("repo/a.bin", b"a")
    upstream.faults["repo/a.bin"].append(status_fault(503))
    url = f"http://127.0.0.2:{free_port()}/repo/PULP_MANIFEST"
    remote = await remote_with_units(url, "streamed", {"a.bin": b"a"}, max_retries=0,
                                     mirrors=[upstream.url + "repo/"])
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 502
    assert b"127.0.0.2" not in body
    assert body == (b"Upstream failure for a.bin: HTTP 503 Service Unavailable; 1 other "
                    b"upstream URL(s) refused by the outbound address policy\n")
