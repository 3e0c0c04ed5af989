"""Authentication, TLS and proxies, against real loopback servers."""
from __future__ import annotations

import asyncio
import logging
import os
import ssl

import pytest
import trustme

from pulp_downloads.download import NetworkError, NotAuthorized, TLSError

from .upstream import Upstream, sha256
from .waiting import PATIENCE, eventually

DATA = os.urandom(512 * 1024)


async def test_basic_auth_is_sent(upstream, make_factory):
    upstream.basic_auth = ("alice", "wonder")
    url = upstream.add("f", DATA)
    result = await make_factory(upstream.url, username="alice", password="wonder").build(url).run()
    assert result.size == len(DATA)


async def test_wrong_basic_auth_is_not_authorized_without_leaking_password(upstream, make_factory,
                                                                           caplog):
    upstream.basic_auth = ("alice", "wonder")
    url = upstream.add("f", DATA)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(NotAuthorized) as info:
        await make_factory(upstream.url, username="alice", password="pw-LEAK", max_retries=3
                           ).build(url).run()
    assert info.value.status == 401
    assert "pw-LEAK" not in str(info.value) and "pw-LEAK" not in caplog.text
    assert upstream.hits["f"] == 1


async def test_bearer_token_from_challenge_is_fetched_once_for_concurrent_downloads(
        upstream, make_factory):
    upstream.bearer = {"token": "tok-123", "service": "registry.test", "scope": "repository:r:pull"}
    upstream.basic_auth = ("alice", "wonder")
    for i in range(8):
        upstream.add(f"blobs/{i}", DATA)
    upstream.token_gate = gate = upstream.gate()
    factory = make_factory(upstream.url, username="alice", password="wonder",
                           download_concurrency=8)
    downloads = asyncio.gather(*(factory.build(f"blobs/{i}",
                                               expected_digests={"sha256": sha256(DATA)}).run()
                                 for i in range(8)))
    # The token is held back until all eight downloads were challenged.
    await eventually(lambda: all(upstream.hits[f"blobs/{i}"] for i in range(8)),
                     "eight challenged downloads")
    gate.open()
    results = await asyncio.wait_for(downloads, PATIENCE)
    assert len(results) == 8
    assert upstream.token_requests == 1
    # Later downloads send the cached token straight away: no further challenge.
    before = sum(upstream.hits.values())
    await factory.build("blobs/0").run()
    assert sum(upstream.hits.values()) == before + 1
    assert upstream.requests[-1][2]["Authorization"] == "Bearer tok-123"


async def test_token_endpoint_refusing_credentials_is_not_authorized(upstream, make_factory):
    upstream.bearer = {"token": "t", "service": "s", "scope": "x"}
    upstream.basic_auth = ("alice", "wonder")
    upstream.add("f", b"f")
    with pytest.raises(NotAuthorized):
        await make_factory(upstream.url, username="alice", password="wrong").build("f").run()


# --- TLS -----------------------------------------------------------------------------------
@pytest.fixture
async def tls_upstream(aiohttp_server, server_ssl_context):
    up = Upstream()
    up.server = await aiohttp_server(up.app(), ssl=server_ssl_context)
    return up


async def test_https_with_the_remotes_ca_cert(tls_upstream, make_factory, ca):
    url = tls_upstream.add("f", DATA)
    assert url.startswith("https://")
    result = await make_factory(tls_upstream.url, ca_cert=ca.cert_pem.bytes().decode()).build(
        url, expected_digests={"sha256": sha256(DATA)}).run()
    assert result.size == len(DATA)


async def test_https_with_an_untrusted_certificate_is_a_tls_error(tls_upstream, make_factory):
    url = tls_upstream.add("f", DATA)
    other_ca = trustme.CA()
    with pytest.raises(TLSError):
        await make_factory(tls_upstream.url, ca_cert=other_ca.cert_pem.bytes().decode(),
                           max_retries=2).build(url).run()
    assert tls_upstream.hits["f"] == 0


async def test_tls_validation_off_accepts_any_certificate(tls_upstream, make_factory):
    url = tls_upstream.add("f", DATA)
    result = await make_factory(tls_upstream.url, tls_validation=False).build(url).run()
    assert result.size == len(DATA)


async def test_client_certificate_is_presented(aiohttp_server, ca, server_cert, client_cert,
                                               make_factory, tmp_path):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    up = Upstream()
    up.server = await aiohttp_server(up.app(), ssl=context)
    url = up.add("f", DATA)
    with pytest.raises((TLSError, NetworkError)):
        await make_factory(up.url, ca_cert=ca.cert_pem.bytes().decode(), max_retries=0
                           ).build(url).run()
    before = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    factory = make_factory(
        up.url, ca_cert=ca.cert_pem.bytes().decode(),
        client_cert=client_cert.cert_chain_pems[0].bytes().decode(),
        client_key=client_cert.private_key_pem.bytes().decode(),
    )
    after = set(os.listdir(os.environ.get("TMPDIR", "/tmp")))
    assert not [n for n in after - before if n.startswith("pulp-dl-tls-")], \
        "key material is not left on disk"
    result = await factory.build(url).run()
    assert result.size == len(DATA)


# --- proxy ----------------------------------------------------------------------------------
async def test_http_target_through_authenticated_proxy(upstream, make_factory, http_proxy):
    url = upstream.add("f", DATA)
    factory = make_factory(upstream.url, proxy_url=http_proxy, proxy_username="proxyuser",
                           proxy_password="proxypass")
    result = await factory.build(url, expected_digests={"sha256": sha256(DATA)}).run()
    assert result.size == len(DATA)
    assert upstream.hits["f"] == 1


async def test_https_target_through_proxy_uses_connect(tls_upstream, make_factory, http_proxy, ca):
    url = tls_upstream.add("f", DATA)
    factory = make_factory(tls_upstream.url, proxy_url=http_proxy, proxy_username="proxyuser",
                           proxy_password="proxypass", ca_cert=ca.cert_pem.bytes().decode())
    result = await factory.build(url, expected_digests={"sha256": sha256(DATA)}).run()
    assert result.size == len(DATA)


async def test_wrong_proxy_credentials_are_not_authorized(upstream, make_factory, http_proxy):
    url = upstream.add("f", DATA)
    factory = make_factory(upstream.url, proxy_url=http_proxy, proxy_username="proxyuser",
                           proxy_password="pw-WRONG", max_retries=2)
    with pytest.raises(NotAuthorized) as info:
        await factory.build(url).run()
    assert info.value.status == 407
    assert "pw-WRONG" not in str(info.value)
    assert upstream.hits["f"] == 0


async def test_wrong_proxy_credentials_for_https_target(tls_upstream, make_factory, http_proxy,
                                                        ca):
    url = tls_upstream.add("f", DATA)
    factory = make_factory(tls_upstream.url, proxy_url=http_proxy, proxy_username="proxyuser",
                           proxy_password="nope", ca_cert=ca.cert_pem.bytes().decode())
    with pytest.raises(NotAuthorized) as info:
        await factory.build(url).run()
    assert info.value.status == 407
