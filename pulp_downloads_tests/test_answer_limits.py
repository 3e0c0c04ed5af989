"""Untrusted answers are bounded: every document read from an upstream into memory has a
limit, an answer past it is refused with an error naming the URL and the limit, and nothing
much past the limit is read. Oversized answers are streamed by loopback servers (chunked,
no length announced) so that the test's own memory stays small. Token answers are in
``test_download_errors.py``.
"""
from __future__ import annotations

import asyncio
import logging
import os

import pytest
from aiohttp import web

from pulp_downloads.download import AnswerTooLarge, HttpError, MemoryWriter, NotAuthorized
from pulp_downloads.download.answers import MAX_MIRRORLIST_SIZE
from pulp_downloads.download.metalink import (
    MAX_BASES,
    MAX_DEPTH,
    MAX_ELEMENTS,
    MetalinkError,
    parse_metalink,
)
from pulp_downloads.download.mirrors import parse_mirrorlist

from .upstream import endless_fault

MiB = 1024 * 1024
DATA = os.urandom(10_000)
META = '<metalink xmlns="urn:ietf:params:xml:ns:metalink">'


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# --- mirror lists and Metalink: 16 MiB ------------------------------------------------------------
@pytest.mark.parametrize("name,content_type", [("mirrors.txt", "text/plain"),
                                               ("mirrors.meta4", "application/metalink4+xml")])
async def test_an_endless_mirror_list_is_refused_at_the_limit(upstream, mirror, make_factory,
                                                             caplog, name, content_type):
    upstream.add("repo/f", DATA)
    listing = upstream.add(name, b"")
    upstream.faults[name].append(endless_fault(
        f"{mirror.url}repo/\n".encode() if name.endswith("txt") else b"<a/>" * 1000,
        first=b"" if name.endswith("txt") else META.encode(),
        bound=4 * MAX_MIRRORLIST_SIZE, headers={"Content-Type": content_type}))
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST", mirrorlist_url=listing)
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download"):
        result = await asyncio.wait_for(factory.build("f").run(), 60)
    assert result.final_url == upstream.url + "repo/f"  # the configured bases still work
    assert factory.context.mirrors.bases == [upstream.url + "repo/"]
    assert (f"mirror list refused: the mirror list is larger than 16 MiB (16777216 bytes), "
            f"the most read into memory ({listing}); using configured mirrors"
            in warnings_of(caplog))
    # The client stopped at the limit (what else was sent sits in the sockets' buffers).
    assert upstream.sent[name] < 2 * MAX_MIRRORLIST_SIZE


async def test_a_mirror_list_announcing_more_than_the_limit_is_not_read(upstream, make_factory,
                                                                       caplog):
    upstream.add("repo/f", DATA)
    listing = upstream.add("mirrors.meta4", b" " * (MAX_MIRRORLIST_SIZE + 1))
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST", mirrorlist_url=listing)
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download"):
        await factory.build("f").run()
    assert any("larger than 16 MiB" in message and listing in message
               for message in warnings_of(caplog))


async def test_a_file_mirror_list_past_the_limit_is_refused(file_roots, upstream, make_factory,
                                                           caplog):
    upstream.add("repo/f", DATA)
    listing = file_roots / "mirrors.txt"
    with open(listing, "wb") as handle:
        handle.truncate(MAX_MIRRORLIST_SIZE + 1)  # sparse: no disk space used
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST",
                           mirrorlist_url=listing.as_uri())
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download"):
        result = await factory.build("f").run()
    assert result.final_url == upstream.url + "repo/f"
    assert any("larger than 16 MiB" in message and listing.as_uri() in message
               for message in warnings_of(caplog))


async def test_a_mirror_list_just_under_the_limit_is_used(upstream, mirror, make_factory):
    mirror.add("repo/f", DATA)
    line = f"{mirror.url}repo/\n".encode()
    padding = b"#" * (MAX_MIRRORLIST_SIZE - len(line) - 1) + b"\n"
    listing = upstream.add("mirrors.txt", padding + line)
    dead = upstream.url + "gone/"  # 404: the mirror is tried next
    factory = make_factory(dead + "PULP_MANIFEST", mirrorlist_url=listing)
    result = await factory.build("f").run()
    assert result.final_url == mirror.url + "repo/f"


def test_a_deep_or_huge_metalink_is_refused_before_it_takes_memory():
    with pytest.raises(MetalinkError, match=f"nested deeper than {MAX_DEPTH}"):
        parse_metalink(META + "<a>" * 100_000 + "</a>" * 100_000 + "</metalink>")
    with pytest.raises(MetalinkError, match=f"more than {MAX_ELEMENTS} elements"):
        parse_metalink(META + "<a/>" * MAX_ELEMENTS + "</metalink>")


def test_a_metalink_keeps_at_most_max_bases_mirrors(caplog):
    urls = "".join(f"<url>http://m{i}.test/r/f</url>" for i in range(MAX_BASES + 5))
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download.metalink"):
        found = parse_metalink(f'{META}<file name="f">{urls}</file></metalink>')
    assert len(found.mirrors) == MAX_BASES
    assert f"metalink: URLs of more than {MAX_BASES} mirror bases; 5 URL(s) of further bases " \
           "ignored" in warnings_of(caplog)


def test_a_mirror_list_of_junk_lines_gives_one_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download.mirrors"):
        assert parse_mirrorlist("x\n" * 100_000 + "http://ok.test/m\n") == ["http://ok.test/m/"]
    assert warnings_of(caplog) == [
        "mirror list: 100000 line(s) ignored (the first: line 1): not an http(s) base URL"]


# --- documents kept by a MemoryWriter: manifests (256 MiB) ----------------------------------------
async def test_a_memory_writer_refuses_past_its_size_and_stops_reading(upstream, make_factory):
    upstream.add("big", b"")
    upstream.faults["big"].append(endless_fault(b"x" * 65536, bound=64 * MiB))
    writer = MemoryWriter(MiB)
    factory = make_factory(upstream.url, max_retries=0)
    with pytest.raises(AnswerTooLarge) as info:
        await asyncio.wait_for(factory.build("big", writer=writer).run(), 60)
    assert info.value.limit == MiB
    assert str(info.value) == (f"the answer is larger than 1 MiB ({MiB} bytes), the most read "
                               f"into memory ({upstream.url}big)")
    assert writer.getvalue() == b""
    assert upstream.sent["big"] < 32 * MiB


@pytest.mark.django_db(transaction=True)
def test_a_manifest_past_the_limit_fails_the_sync_naming_url_and_limit(threaded_upstream,
                                                                      monkeypatch):
    from pulp_downloads.models import Remote
    from pulp_downloads.sync import SyncError, sync_remote
    from pulp_downloads.sync import run

    monkeypatch.setattr(run, "MAX_MANIFEST_SIZE", 2 * MiB)  # 256 MiB is the real one
    url = threaded_upstream.add_repo("repo", {"a.bin": DATA})
    line = threaded_upstream.files["repo/PULP_MANIFEST"]
    threaded_upstream.faults["repo/PULP_MANIFEST"].append(
        endless_fault(line, bound=64 * MiB))
    remote = Remote.objects.create(name="big-manifest", url=url)
    with pytest.raises(SyncError) as info:
        sync_remote(remote)
    assert str(info.value) == (
        f"could not fetch the manifest: the answer is larger than 2 MiB ({2 * MiB} bytes), "
        f"the most read into memory ({url})")
    assert threaded_upstream.sent["repo/PULP_MANIFEST"] < 32 * MiB


def test_the_manifest_limit_is_256_mib():
    from pulp_downloads.sync.run import MAX_MANIFEST_SIZE

    assert MAX_MANIFEST_SIZE == 256 * MiB  # docs/operations.md#limits says so


# --- error answers: their bodies are never read ---------------------------------------------------
async def test_an_endless_error_body_is_not_read(upstream, make_factory):
    upstream.add("f", DATA)
    upstream.faults["f"].append(endless_fault(b"e" * 65536, bound=64 * MiB, status=500))
    factory = make_factory(upstream.url, max_retries=0)
    with pytest.raises(HttpError, match="HTTP 500"):
        await asyncio.wait_for(factory.build("f").run(), 60)
    assert upstream.sent["f"] < 32 * MiB


async def test_an_endless_error_body_of_a_mirror_list_is_not_read(upstream, make_factory, caplog):
    upstream.add("repo/f", DATA)
    listing = upstream.add("mirrors.txt", b"")
    upstream.faults["mirrors.txt"].append(endless_fault(b"e" * 65536, bound=64 * MiB,
                                                        status=503))
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST", mirrorlist_url=listing)
    with caplog.at_level(logging.WARNING, logger="pulp_downloads.download"):
        await asyncio.wait_for(factory.build("f").run(), 60)
    assert f"mirror list {listing} answered HTTP 503; using configured mirrors" in \
        warnings_of(caplog)
    assert upstream.sent["mirrors.txt"] < 32 * MiB


async def test_an_endless_error_body_of_a_token_endpoint_is_not_read(upstream, mirror,
                                                                      make_factory):
    mirror.add("tok", b"")
    mirror.faults["tok"].append(endless_fault(b"e" * 65536, bound=64 * MiB, status=403))
    upstream.add("f", DATA)

    async def challenge(request, up):
        return web.Response(status=401, headers={
            "WWW-Authenticate": f'Bearer realm="{mirror.url}tok",service="s"'})

    upstream.faults["f"].append(challenge)
    factory = make_factory(upstream.url, max_retries=0)
    with pytest.raises(NotAuthorized, match="token request refused"):
        await asyncio.wait_for(factory.build("f").run(), 60)
    assert 0 < mirror.sent["tok"] < 32 * MiB
