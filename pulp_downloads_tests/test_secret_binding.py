"""Secrets go only where their owner put them: the remote's URL, its configured mirrors and
(for proxy credentials) its proxy. Loopback servers record what they receive."""
from __future__ import annotations

import base64
import ssl

import pytest
from aiohttp import web

from pulp_downloads.download import NetworkError, TLSError

from .upstream import Upstream, sha256, status_fault

ADMIN = "remote administrator"
BASIC = "Basic " + base64.b64encode(b"alice:pw-SECRET").decode()


def authorizations(upstream: Upstream) -> list[str]:
    return [headers.get("Authorization", "") for _, _, headers in upstream.requests]


# --- changing where a remote points, through the API ---------------------------------------
@pytest.fixture
def api(api_client_for, db):
    return api_client_for(ADMIN)


def create(api, **fields) -> dict:
    body = {"name": "r", "url": "https://one.test/repo/PULP_MANIFEST", "username": "alice",
            "password": "pw-SECRET", "bearer_token": "tok-SECRET"}
    body.update(fields)
    response = api.post("/api/remotes/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.mark.django_db(transaction=True)
def test_a_new_origin_clears_the_credentials_unless_given_again(api):
    remote = create(api)
    href = remote["href"]
    # Same origin, other path: kept.
    same = api.patch(href, {"url": "https://one.test/other/PULP_MANIFEST"}, format="json").json()
    assert same["has_password"] and same["has_bearer_token"] and same["username"] == "alice"
    # New origin, nothing given again: cleared (and the username with the password).
    moved = api.patch(href, {"url": "https://two.test/repo/PULP_MANIFEST"}, format="json")
    assert moved.status_code == 200, moved.json()
    data = moved.json()
    assert not data["has_password"] and not data["has_bearer_token"] and data["username"] == ""
    # New origin with the password given again: kept.
    again = api.patch(href, {"url": "https://three.test/PULP_MANIFEST", "username": "alice",
                             "password": "pw-SECRET"}, format="json").json()
    assert again["has_password"] and again["username"] == "alice"


@pytest.mark.django_db(transaction=True)
def test_a_new_mirror_or_mirror_list_origin_clears_the_credentials(api):
    href = create(api)["href"]
    added = api.patch(href, {"mirrors": ["https://mirror.test/repo/"]}, format="json").json()
    assert not added["has_password"] and not added["has_bearer_token"]
    api.patch(href, {"username": "alice", "password": "pw-SECRET"}, format="json")
    listed = api.patch(href, {"mirrorlist_url": "https://list.test/mirrors"},
                       format="json").json()
    assert not listed["has_password"]


@pytest.mark.django_db(transaction=True)
def test_a_new_proxy_clears_the_proxy_and_the_origin_credentials(api):
    # A proxy relays a plain-http request's Authorization as it is: a new proxy is a new
    # place for the origin's credentials too.
    href = create(api, proxy_url="http://127.0.0.1:3128", proxy_username="p",
                  proxy_password="px-SECRET")["href"]
    moved = api.patch(href, {"proxy_url": "http://127.0.0.1:3129"}, format="json").json()
    assert not moved["has_proxy_password"] and moved["proxy_username"] == ""
    assert not moved["has_password"] and not moved["has_bearer_token"]


@pytest.mark.django_db(transaction=True)
def test_headers_that_carry_credentials_are_refused(api):
    for name in ("Authorization", "proxy-authorization", "Cookie"):
        response = api.post("/api/remotes/", {
            "name": "h", "url": "https://one.test/PULP_MANIFEST", "headers": {name: "x"},
        }, format="json")
        assert response.status_code == 400
        assert "carries credentials" in " ".join(response.json()["headers"])


@pytest.mark.django_db(transaction=True)
def test_after_a_move_the_sync_sends_no_authorization_to_the_new_origin(
        api, threaded_upstream, other_threaded_upstream):
    content = {"a.bin": b"a" * 100}
    old_url = threaded_upstream.add_repo("repo", content)
    threaded_upstream.basic_auth = ("alice", "pw-SECRET")
    href = create(api, url=old_url, bearer_token="")["href"]
    first = api.post(f"{href}sync/").json()["task"]
    assert api.get(first).json()["state"] == "completed"
    assert BASIC in authorizations(threaded_upstream)

    new_url = other_threaded_upstream.add_repo("repo", {"b.bin": b"b" * 100})
    assert api.patch(href, {"url": new_url}, format="json").status_code == 200
    second = api.post(f"{href}sync/").json()["task"]
    assert api.get(second).json()["state"] == "completed"
    assert other_threaded_upstream.requests, "the new upstream was asked"
    assert authorizations(other_threaded_upstream) == [""] * len(
        other_threaded_upstream.requests)


# --- what the library sends where ------------------------------------------------------------
def recording_app(handler) -> tuple[web.Application, list[dict]]:
    seen: list[dict] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append({"path": request.path, **request.headers})
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", record)
    return app, seen


async def test_a_mirror_list_mirrors_bearer_challenge_gets_no_credentials(
        upstream, aiohttp_server, make_factory):
    data = b"payload" * 100
    # C: a token service named by the untrusted mirror.
    async def token(request):
        return web.json_response({"token": "anon-token", "expires_in": 300})
    token_app, token_seen = recording_app(token)
    token_server = await aiohttp_server(token_app)
    realm = str(token_server.make_url("/token"))

    # B: a mirror learnt from the mirror list, asking for a bearer token from C.
    async def mirror_files(request):
        if request.headers.get("Authorization") != "Bearer anon-token":
            return web.Response(status=401, headers={
                "WWW-Authenticate": f'Bearer realm="{realm}",service="s",scope="pull"'})
        return web.Response(body=data)
    mirror_app, mirror_seen = recording_app(mirror_files)
    mirror_server = await aiohttp_server(mirror_app)

    # A: the remote's own URL, with basic credentials; its copy of the file is unavailable.
    upstream.basic_auth = ("alice", "pw-SECRET")
    upstream.add("repo/mirrors.txt", f"{mirror_server.make_url('/repo/')}\n".encode())
    upstream.add("repo/f.bin", data)
    upstream.faults["repo/f.bin"].append(status_fault(503))
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST", username="alice",
                           password="pw-SECRET", max_retries=0,
                           mirrorlist_url=upstream.url + "repo/mirrors.txt",
                           headers={"X-Custom": "only-for-trusted"})
    result = await factory.build("f.bin", expected_digests={"sha256": sha256(data)}).run()
    assert result.final_url.startswith(str(mirror_server.make_url("/")))

    assert set(authorizations(upstream)) == {BASIC}  # the trusted origin got them
    assert token_seen and all("Authorization" not in h for h in token_seen)
    assert all(h.get("Authorization") in (None, "Bearer anon-token") for h in mirror_seen)
    assert all("X-Custom" not in h for h in mirror_seen + token_seen)
    assert all(h.get("X-Custom") == "only-for-trusted" for _, _, h in upstream.requests)


async def test_a_redirect_to_another_origin_carries_no_credentials_or_headers(
        upstream, aiohttp_server, make_factory):
    data = b"redirected" * 50

    async def serve(request):
        return web.Response(body=data)
    other_app, other_seen = recording_app(serve)
    other = await aiohttp_server(other_app)

    async def redirect(request, up):
        raise web.HTTPFound(str(other.make_url("/elsewhere/f.bin")))

    upstream.add("repo/f.bin", data)
    upstream.faults["repo/f.bin"].append(redirect)
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST", bearer_token="tok-SECRET",
                           headers={"X-Custom": "only-for-trusted"})
    result = await factory.build("f.bin").run()
    assert result.size == len(data)
    assert result.final_url == str(other.make_url("/elsewhere/f.bin"))
    assert authorizations(upstream) == ["Bearer tok-SECRET"]
    assert upstream.requests[0][2]["X-Custom"] == "only-for-trusted"
    assert len(other_seen) == 1
    assert "Authorization" not in other_seen[0] and "X-Custom" not in other_seen[0]


async def test_the_client_certificate_is_not_presented_to_a_redirect_target(
        upstream, aiohttp_server, ca, server_cert, client_cert, make_factory):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED  # only a client presenting its certificate gets in
    guarded = Upstream()
    guarded.server = await aiohttp_server(guarded.app(), ssl=context)
    target = guarded.add("f.bin", b"guarded")

    async def redirect(request, up):
        raise web.HTTPFound(target)

    upstream.add("repo/f.bin", b"x")
    upstream.faults["repo/f.bin"].append(redirect)
    tls = {"ca_cert": ca.cert_pem.bytes().decode(),
           "client_cert": client_cert.cert_chain_pems[0].bytes().decode(),
           "client_key": client_cert.private_key_pem.bytes().decode()}
    redirected = make_factory(upstream.url + "repo/PULP_MANIFEST", max_retries=0, **tls)
    with pytest.raises((TLSError, NetworkError)):
        await redirected.build("f.bin").run()
    assert guarded.requests == []
    # The same server as the remote's own URL does get the certificate.
    direct = make_factory(guarded.url + "PULP_MANIFEST", max_retries=0, **tls)
    assert (await direct.build(target).run()).size == len(b"guarded")
