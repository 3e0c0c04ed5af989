"""Content never scripts the app: every ``/content/`` answer, on every serving path (the ASGI
fast path, Django's view under ASGI and WSGI, relayed downloads, listings and errors), is
sandboxed; upstream header values that are not ASCII never break an answer; a separate
content origin serves nothing else."""
from __future__ import annotations

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from pulp_downloads.models import ContentUnit, Remote

from .content_app import DATA, get, remote_with_units
from .upstream import sha256, status_fault

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]

PAGE = b"<!doctype html><title>page</title><script>document.title='pwned'</script>"


def assert_sandboxed(headers, what: str) -> None:
    """``Content-Security-Policy: sandbox`` and ``nosniff``, each exactly once."""
    assert headers.getall("Content-Security-Policy", []) == ["sandbox"], (what, headers)
    assert headers.getall("X-Content-Type-Options", []) == ["nosniff"], (what, headers)


async def request(method: str, url: str, **kwargs):
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.request(method, url, allow_redirects=False, **kwargs) as response:
            return response.status, response.headers.copy(), await response.read()


@sync_to_async
def remote_named(name: str, url: str, policy: str, files: dict[str, bytes], **fields) -> Remote:
    remote = Remote.objects.create(name=name, url=url, policy=policy, **fields)
    for path, data in files.items():
        ContentUnit.objects.create(remote=remote, relative_path=path, sha256=sha256(data),
                                   size=len(data))
    return remote


async def test_every_answer_of_the_asgi_app_is_sandboxed(upstream, asgi_server):
    from pulp_downloads.content.asgi import stored_files
    from pulp_downloads.sync import async_sync_remote

    files = {"page.html": PAGE, "pool/b.bin": DATA[:5000], "gone.bin": DATA[:100]}
    url = upstream.add_repo("repo", files)
    stored = await remote_with_units(url, "immediate", files)
    await async_sync_remote(stored)
    base = f"{asgi_server}/content/{stored.name}"
    answers = {}
    answers["stored"] = await request("GET", f"{base}/page.html")
    assert answers["stored"][0] == 200 and answers["stored"][2] == PAGE
    assert (stored.name, "page.html") in stored_files._entries  # the fast path answered
    answers["stored again"] = await request("GET", f"{base}/page.html")  # the cached headers
    answers["range"] = await request("GET", f"{base}/pool/b.bin", headers={"Range": "bytes=1-9"})
    assert answers["range"][0] == 206
    answers["not modified"] = await request(
        "GET", f"{base}/pool/b.bin", headers={"If-None-Match": f'"{sha256(files["pool/b.bin"])}"'})
    assert answers["not modified"][0] == 304
    answers["unsatisfiable"] = await request("GET", f"{base}/pool/b.bin",
                                             headers={"Range": "bytes=9999-"})
    assert answers["unsatisfiable"][0] == 416
    answers["head"] = await request("HEAD", f"{base}/page.html")
    answers["post"] = await request("POST", f"{base}/page.html")
    assert answers["post"][0] in (403, 405)  # CSRF refuses it first
    answers["index"] = await request("GET", f"{asgi_server}/content/")
    answers["listing"] = await request("GET", f"{base}/")
    answers["sub listing"] = await request("GET", f"{base}/pool/")
    assert answers["sub listing"][0] == 200 and b"b.bin" in answers["sub listing"][2]
    answers["not listed"] = await request("GET", f"{base}/nothing.html")
    answers["no remote"] = await request("GET", f"{asgi_server}/content/nobody/x.html")
    answers["no directory"] = await request("GET", f"{base}/nothing/")
    assert {answers[key][0] for key in ("not listed", "no remote", "no directory")} == {404}
    answers["no slash"] = await request("GET", f"{asgi_server}/content/{stored.name}")
    assert answers["no slash"][0] in (301, 404)
    answers["content, no slash"] = await request("GET", f"{asgi_server}/content")
    assert answers["content, no slash"][0] == 301
    from pulp_downloads.models import Artifact

    artifact = await Artifact.objects.aget(sha256=sha256(files["gone.bin"]))
    artifact.file.storage.delete(artifact.file.name)
    answers["missing stored file"] = await request("GET", f"{base}/gone.bin")
    assert answers["missing stored file"][0] == 503

    relayed = {"s.html": PAGE, "broken.bin": b"broken", "absent.bin": b"absent"}
    url = upstream.add_repo("relay", {"s.html": PAGE, "broken.bin": b"broken"})
    upstream.faults["relay/broken.bin"] += [status_fault(500)] * 2
    streamed = await remote_with_units(url, "streamed", relayed, max_retries=0)
    on_demand = await remote_with_units(url, "on_demand", {"s.html": PAGE})
    verified = await remote_named("verified", url, "streamed", {"s.html": PAGE},
                                  verify_before_serve=True)
    answers["streamed relay"] = await request("GET", f"{asgi_server}/content/{streamed.name}/s.html")
    assert answers["streamed relay"][0] == 200 and answers["streamed relay"][2] == PAGE
    answers["on_demand relay"] = await request("GET",
                                               f"{asgi_server}/content/{on_demand.name}/s.html")
    assert answers["on_demand relay"][2] == PAGE
    answers["verified relay"] = await request("GET",
                                              f"{asgi_server}/content/{verified.name}/s.html")
    assert answers["verified relay"][2] == PAGE
    answers["upstream head"] = await request("HEAD",
                                             f"{asgi_server}/content/{streamed.name}/s.html")
    assert answers["upstream head"][0] == 200
    answers["upstream 500"] = await request("GET",
                                            f"{asgi_server}/content/{streamed.name}/broken.bin")
    assert answers["upstream 500"][0] == 502
    answers["upstream head 500"] = await request(
        "HEAD", f"{asgi_server}/content/{streamed.name}/broken.bin")
    assert answers["upstream head 500"][0] == 502
    answers["upstream 404"] = await request("GET",
                                            f"{asgi_server}/content/{streamed.name}/absent.bin")
    assert answers["upstream 404"][0] == 404
    from pulp_downloads.conf import app_settings

    answers["loop"] = await request("GET", f"{asgi_server}/content/{streamed.name}/s.html",
                                    headers={"Via": f"1.1 {app_settings().via}"})
    assert answers["loop"][0] == 508
    for what, (_, headers, _) in answers.items():
        assert_sandboxed(headers, what)
    assert "X-Frame-Options" not in answers["stored"][1]  # (Django did not answer it)


def test_every_answer_through_wsgi_is_sandboxed(client, threaded_upstream, django_user_model):
    from pulp_downloads.sync import sync_remote

    files = {"page.html": PAGE, "pool/b.bin": DATA[:5000]}
    remote = Remote.objects.create(name="w", url=threaded_upstream.add_repo("w", files))
    sync_remote(remote)
    streamed = Remote.objects.create(name="ws", url=remote.url, policy="streamed")
    ContentUnit.objects.create(remote=streamed, relative_path="page.html", sha256=sha256(PAGE),
                               size=len(PAGE))
    admin = django_user_model.objects.create_superuser("admin", password="admin-pass")
    client.force_login(admin)  # a logged-in administrator gets the same headers
    answers = {
        "stored": client.get("/content/w/page.html"),
        "range": client.get("/content/w/pool/b.bin", HTTP_RANGE="bytes=0-9"),
        "head": client.head("/content/w/page.html"),
        "post": client.post("/content/w/page.html"),
        "index": client.get("/content/"),
        "listing": client.get("/content/w/pool/"),
        "not listed": client.get("/content/w/none.html"),
        "no remote": client.get("/content/nobody/"),
        "upstream head": client.head("/content/ws/page.html"),
    }
    assert answers["stored"].status_code == 200
    assert _body(answers["stored"]) == PAGE and answers["upstream head"].status_code == 200
    assert answers["range"].status_code == 206 and answers["post"].status_code == 405
    assert answers["not listed"].status_code == answers["no remote"].status_code == 404
    for what, response in answers.items():
        assert response.headers["Content-Security-Policy"] == "sandbox", what
        assert response.headers["X-Content-Type-Options"] == "nosniff", what
    assert "Content-Security-Policy" not in client.get("/api/remotes/").headers
    assert "Content-Security-Policy" not in client.get("/admin/").headers


def _body(response) -> bytes:
    from asgiref.sync import async_to_sync

    async def read() -> bytes:
        return b"".join([block async for block in response.streaming_content])

    return async_to_sync(read)()


async def test_non_latin1_upstream_headers_are_encoded_or_dropped_on_both_paths(
        upstream, asgi_server):
    """``Content-Disposition: attachment; filename=☃.bin`` from the upstream: sent as an
    RFC 8187 extended value; other headers that are not ASCII are dropped; never a 500."""
    from aiohttp import web

    def odd_headers(request, up):
        data = up.files[request.match_info["path"]]
        return web.Response(body=data if request.method == "GET" else None, headers={
            "Content-Disposition": 'attachment; filename=☃.bin; size="1"',
            "Content-Language": "fr-☃", "ETag": '"abc"',
            "Content-Type": "application/octet-stream",
            **({"Content-Length": str(len(data))} if request.method == "HEAD" else {})})

    async def fault(request, up):
        return odd_headers(request, up)

    data = DATA[:2000]
    url = upstream.add_repo("repo", {"f.bin": data})
    streamed = await remote_with_units(url, "streamed", {"f.bin": data})
    verified = await remote_named("verified", url, "streamed", {"f.bin": data},
                                  verify_before_serve=True)
    on_demand = await remote_with_units(url, "on_demand", {"f.bin": data})
    paths = {
        "fast path (streamed)": ("GET", f"{asgi_server}/content/{streamed.name}/f.bin"),
        "fast path (on_demand)": ("GET", f"{asgi_server}/content/{on_demand.name}/f.bin"),
        "django view (verify_before_serve)": ("GET",
                                              f"{asgi_server}/content/{verified.name}/f.bin"),
        "django view (HEAD)": ("HEAD", f"{asgi_server}/content/{streamed.name}/f.bin"),
    }
    for what, (method, address) in paths.items():
        upstream.faults["repo/f.bin"].append(fault)
        status, headers, body = await request(method, address)
        assert status == 200, (what, body[:300])
        assert body == (data if method == "GET" else b""), what
        assert headers["Content-Disposition"] == (
            """attachment; filename*=UTF-8''%E2%98%83.bin; size="1\""""), what
        assert "Content-Language" not in headers, what
        assert headers["ETag"] == '"abc"', what
        assert_sandboxed(headers, what)
    assert not upstream.faults["repo/f.bin"], "every request reached the odd upstream"


async def test_undecodable_upstream_header_bytes_are_encoded_as_iso_8859_1(upstream,
                                                                           asgi_server):
    """An upstream that sends Latin-1 bytes (not UTF-8) in a file name."""
    from aiohttp import web

    data = DATA[:1500]

    async def raw_latin1(request, up):
        head = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n"
                b"Content-Disposition: attachment; filename=caf\xe9.bin\r\n"
                b"X-Other: \xe9\r\n\r\n" % len(data))
        request.transport.write(head + data)
        request.transport.close()
        raise web.HTTPException()  # (nothing more is sent: the connection is closed)

    url = upstream.add_repo("repo", {"f.bin": data})
    streamed = await remote_with_units(url, "streamed", {"f.bin": data})
    upstream.faults["repo/f.bin"].append(raw_latin1)
    status, headers, body = await get(f"{asgi_server}/content/{streamed.name}/f.bin")
    assert status == 200 and body == data
    assert headers["Content-Disposition"] == "attachment; filename*=ISO-8859-1''caf%E9.bin"


async def test_the_content_origin_serves_content_and_nothing_else(upstream, asgi_server,
                                                                  settings):
    """With ``PULP_DOWNLOADS_CONTENT_ORIGIN``, the admin and the API are refused on that
    host (and still answered on the site's own), while content is served there."""
    from pulp_downloads.sync import async_sync_remote

    port = asgi_server.rsplit(":", 1)[1]
    settings.ALLOWED_HOSTS = ["127.0.0.1", "content.test"]
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS,
                               "CONTENT_ORIGIN": f"http://content.test:{port}"}
    url = upstream.add_repo("repo", {"page.html": PAGE})
    remote = await remote_with_units(url, "immediate", {"page.html": PAGE})
    await async_sync_remote(remote)
    on_content_origin = {"Host": f"content.test:{port}"}
    for path in ("/admin/", "/admin/login/", "/api/", "/api/remotes/", "/api/auth/login/",
                 "/", "/metrics"):
        status, headers, body = await request("GET", asgi_server + path,
                                              headers=on_content_origin)
        assert status == 404 and b"/content/ only" in body, path
        status, _, _ = await request("GET", asgi_server + path)
        assert status != 404, path  # the site's own host still answers
    status, headers, body = await request("GET", f"{asgi_server}/content/{remote.name}/page.html",
                                          headers=on_content_origin)
    assert status == 200 and body == PAGE
    assert_sandboxed(headers, "content on the content origin")
    status, _, _ = await request("GET", f"{asgi_server}/content/{remote.name}/",
                                 headers=on_content_origin)
    assert status == 200
    status, _, _ = await request("GET", f"{asgi_server}/status/", headers=on_content_origin)
    assert status == 200


def test_admin_and_api_refuse_to_be_framed_and_the_csrf_cookie_is_httponly(client):
    response = client.get("/admin/login/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.cookies["csrftoken"]["httponly"] is True
    response = client.get("/api/auth/login/")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert client.get("/api/").headers["X-Frame-Options"] == "DENY"


def test_ssl_redirect_leaves_content_to_plain_http_clients(client, settings):
    """With ``SECURE_SSL_REDIRECT`` the admin and the API go to HTTPS; ``/content/`` stays
    reachable over HTTP, through Django as through the fast path (which never redirects)."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/api/remotes/").status_code == 301
    assert client.get("/admin/").status_code == 301
    response = client.get("/content/")
    assert response.status_code == 200 and response.headers["Content-Security-Policy"] == "sandbox"
