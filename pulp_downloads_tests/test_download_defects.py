"""What used to escape the library or hang it: odd token answers, raising callbacks and
receivers, mirror lists that fail once, signed URLs in messages."""
from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from pulp_downloads.download import (
    CallbackError,
    DownloadError,
    GroupDownloader,
    RetryPolicy,
    TokenError,
)
from pulp_downloads.download.exceptions import redact_url

from .upstream import status_fault

DATA = b"defects" * 1000


@pytest.mark.parametrize("answer,problem", [
    (web.json_response(["not", "an", "object"]), "not return a JSON object"),
    (web.json_response({"token": "t", "expires_in": "soon"}), "non-numeric expires_in"),
    (web.json_response({"token": "t", "expires_in": -5}), "not a positive number"),
    (web.json_response({"expires_in": 60}), "returned no token"),
    (web.json_response({"token": ["t"]}), "returned no token"),
    (web.Response(text="<html>login</html>"), "did not return JSON"),
])
async def test_odd_token_answers_are_download_errors(upstream, aiohttp_server, make_factory,
                                                     answer, problem):
    async def token(request):
        return answer
    app = web.Application()
    app.router.add_get("/token", token)
    realm = str((await aiohttp_server(app)).make_url("/token"))

    async def challenge(request, up):
        return web.Response(status=401, headers={
            "WWW-Authenticate": f'Bearer realm="{realm}",service="s",scope="x"'})

    upstream.add("f", DATA)
    upstream.faults["f"].append(challenge)
    with pytest.raises(TokenError, match=problem):
        await make_factory(upstream.url, max_retries=0).build("f").run()


async def test_a_raising_progress_callback_fails_that_download_only(upstream, make_factory):
    upstream.add("a", DATA)
    upstream.add("b", DATA)

    def progress(size):
        raise ValueError("callback bug")

    factory = make_factory(upstream.url)
    with pytest.raises(CallbackError, match="progress callback raised ValueError"):
        await factory.build("a", progress=progress).run()
    assert (await factory.build("b").run()).size == len(DATA)


async def test_the_group_downloader_reports_every_group_whatever_raises(upstream, make_factory):
    for name in ("ok1", "bad", "ok2"):
        upstream.add(name, DATA)
    factory = make_factory(upstream.url)

    def broken(size):
        raise KeyError("boom")

    group = GroupDownloader(concurrency=2)
    group.add("first", [factory.build("ok1")])
    group.add("second", [factory.build("bad", progress=broken), factory.build("ok2")])
    reports = {r.key: r for r in await asyncio.wait_for(group.run_all(), 30)}
    assert set(reports) == {"first", "second"}
    assert reports["first"].ok
    second = reports["second"]
    assert not second.ok and len(second.results) == 1
    assert isinstance(second.errors[0], DownloadError)


async def test_a_failed_mirror_list_is_fetched_again_after_the_cooldown(upstream, mirror,
                                                                        make_factory):
    mirror.add("repo/f", DATA)
    upstream.add("mirrors.txt", f"{mirror.url}repo/\n".encode())
    upstream.faults["mirrors.txt"].append(status_fault(503))  # the first fetch fails
    upstream.add("repo/f", DATA)
    upstream.faults["repo/f"].extend([status_fault(500)] * 2)
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST", max_retries=0,
                           mirrorlist_url=upstream.url + "mirrors.txt",
                           retry_policy=RetryPolicy(base=0.01, cap=0.05, mirror_cooldown=0.2))
    with pytest.raises(DownloadError):  # no mirror known yet, the primary fails
        await factory.build("f").run()
    assert upstream.hits["mirrors.txt"] == 1
    await asyncio.sleep(0.25)  # the cool-down, not a race: the factory waits at least this
    result = await factory.build("f").run()
    assert upstream.hits["mirrors.txt"] == 2
    assert result.final_url == mirror.url + "repo/f"


def test_redact_url_hides_credentials_and_query_values():
    redacted = redact_url("https://u:p@cdn.test/f.rpm?X-Amz-Signature=abc123&Expires=99#frag")
    assert redacted == "https://cdn.test/f.rpm?X-Amz-Signature=***&Expires=***"
    assert "abc123" not in redacted and "u:p" not in redacted
    assert redact_url("https://cdn.test/plain") == "https://cdn.test/plain"


async def test_signed_url_tokens_stay_out_of_error_messages(upstream, make_factory):
    upstream.add("f", DATA)
    upstream.faults["f"].append(status_fault(404))
    with pytest.raises(DownloadError) as info:
        await make_factory(upstream.url).build(upstream.url + "f?token=SECRET-TOKEN").run()
    assert "SECRET-TOKEN" not in str(info.value) and "token=***" in str(info.value)
