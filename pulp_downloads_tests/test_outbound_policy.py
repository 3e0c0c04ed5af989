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
    LibrarySettings,
    RemoteConfig,
)

from .upstream import FAST_RETRIES, Upstream


def policy_settings(tmp_path, **policy) -> LibrarySettings:
    return LibrarySettings(working_directory=tmp_path, address_policy=AddressPolicy(**policy))


def test_default_policy_denies_loopback_link_local_and_multicast_but_not_private_ranges():
    policy = AddressPolicy()  # pure address checks: nothing is contacted here
    for denied in ("127.0.0.1", "127.9.9.9", "::1", "169.254.169.254", "fe80::1", "0.0.0.0",
                   "224.0.0.1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254"):
        assert not policy.allows(denied), denied
    for allowed in ("10.1.2.3", "172.16.0.1", "192.168.1.1", "fd00::1", "8.8.8.8"):
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

