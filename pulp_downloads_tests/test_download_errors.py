"""Only DownloadError leaves the library, and every download that started ends in a
``finished`` or ``failed`` event, a cancelled one included.

Servers whose answers break HTTP (a malformed redirect, numbers out of range) are raw
asyncio servers on loopback: aiohttp's own server would refuse to send such answers.
"""
from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest
from aiohttp import web
from asgiref.sync import sync_to_async
from prometheus_client import REGISTRY

from pulp_downloads.download import (
    CallbackError,
    DownloadCanceled,
    DownloadError,
    DownloaderFactory,
    GroupDownloader,
    HttpError,
    IncompleteDownload,
    InvalidHeader,
    InvalidResponse,
    RemoteConfig,
    RetryPolicy,
    TokenError,
)
from pulp_downloads.download.auth import MAX_TOKEN_ANSWER
from pulp_downloads.download.http import parse_retry_after
from pulp_downloads.signals import download_failed, download_started

from .upstream import FAST_RETRIES, sha256, truncate_fault

DATA = os.urandom(200_000)
BIG = "9" * 4400  # int() refuses more than 4300 digits; no int64 holds it


class Oddity(BaseException):
    """Like KeyboardInterrupt, not an Exception: ``except Exception`` lets it through."""


# --- helpers --------------------------------------------------------------------------------------
@pytest.fixture
async def raw_server():
    """``serve(path, answer_bytes)`` on a raw loopback socket server; returns its base URL."""
    answers: dict[str, list[bytes]] = {}

    async def handle(reader, writer):
        try:
            request_line = await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            queue = answers.get(request_line.split()[1].decode(), [])
            writer.write(queue.pop(0) if len(queue) > 1 else queue[0])
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    def serve(path: str, *answer: bytes) -> str:
        answers[path] = list(answer)
        return base + path

    yield serve
    server.close()
    await server.wait_closed()


def raw_answer(status: str, headers: dict[str, str | bytes], body: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\n".encode()
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        head += name.encode() + b": " + (value if isinstance(value, bytes) else value.encode())
        head += b"\r\n"
    return head + b"\r\n" + body


async def token_endpoint(aiohttp_server, handler) -> str:
    app = web.Application()
    app.router.add_get("/token", handler)
    return str((await aiohttp_server(app)).make_url("/token"))


def challenge_from(upstream, path: str, realm: str) -> None:
    async def challenge(request, up):
        return web.Response(status=401, headers={
            "WWW-Authenticate": f'Bearer realm="{realm}",service="s",scope="x"'})
    upstream.add(path, DATA)
    upstream.faults[path].append(challenge)


def in_flight(remote_name: str) -> float:
    return REGISTRY.get_sample_value("pulp_downloads_downloads_in_flight",
                                     {"remote": remote_name}) or 0.0


class Recorder:
    """An event sink (like the one the Django app installs) recording what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []
        self.began = asyncio.Event()

    async def started(self, downloader) -> None:
        self.events.append(("started", downloader.url))
        self.began.set()

    async def finished(self, downloader, result) -> None:
        self.events.append(("finished", downloader.url))

    async def failed(self, downloader, error) -> None:
        self.events.append(("failed", error))


@pytest.fixture
def failed_signals():
    """Every ``download_failed`` error sent, and a threading.Event set by each of them."""
    seen: list[DownloadError] = []
    arrived = threading.Event()

    async def receiver(sender, error, **kwargs):
        seen.append(error)
        arrived.set()

    download_failed.connect(receiver)
    yield seen, arrived
    download_failed.disconnect(receiver)


def held_fault(asked: threading.Event, release: asyncio.Event):
    """Send the headers and 10 bytes, tell ``asked``, then wait for ``release``."""
    async def fault(request, up):
        data = up.files[request.match_info["path"]]
        response = web.StreamResponse()
        response.content_length = len(data)
        await response.prepare(request)
        await response.write(data[:10])
        asked.set()
        await release.wait()
        return response
    return fault


async def wait_threading(event: threading.Event, timeout: float = 20) -> None:
    assert await asyncio.get_running_loop().run_in_executor(None, event.wait, timeout)


# --- 1. malformed input and answers are DownloadErrors ---------------------------------------------
async def test_a_redirect_to_a_malformed_url_is_an_invalid_response(raw_server, make_factory):
    url = raw_server("/f", raw_answer("302 Found", {"Location": "http://[::1"}))
    with pytest.raises(InvalidResponse, match="redirect to a malformed URL"):
        await make_factory(url, max_retries=0).build(url).run()


async def test_a_malformed_url_given_to_build_is_unsupported(upstream, make_factory):
    factory = make_factory("http://[::1/repo/")
    with pytest.raises(DownloadError, match="malformed URL"):
        factory.build("f")


def test_malformed_urls_in_mirror_lists_are_skipped():
    from pulp_downloads.download.metalink import parse_metalink
    from pulp_downloads.download.mirrors import parse_mirrorlist

    assert parse_mirrorlist("http://[::1/\nhttp://h:99999/\nhttp://ok.test/m/\n") == [
        "http://ok.test/m/"]
    metalink = parse_metalink(
        '<metalink xmlns="urn:ietf:params:xml:ns:metalink"><file name="f">'
        "<url>http://[::1/f</url><url>http://ok.test/m/f</url></file></metalink>")
    assert [mirror.base for mirror in metalink.mirrors] == ["http://ok.test/m/"]


async def test_a_malformed_file_url_is_unsupported(file_roots, make_factory):
    factory = make_factory(file_roots.as_uri() + "/")
    with pytest.raises(DownloadError, match="malformed URL"):
        await factory.build("file://[::1/x").run()


async def test_a_token_holding_crlf_is_refused_and_never_sent(upstream, aiohttp_server,
                                                             make_factory):
    async def token(request):
        return web.json_response({"token": "abc\r\nX-Injected: yes", "expires_in": 300})
    challenge_from(upstream, "f", await token_endpoint(aiohttp_server, token))
    with pytest.raises(TokenError, match="control characters"):
        await make_factory(upstream.url, max_retries=0).build("f").run()
    assert upstream.hits["f"] == 1  # only the challenged request: the token went nowhere
    assert not any("X-Injected" in headers for _, _, headers in upstream.requests)


@pytest.mark.parametrize("fields", [
    {"bearer_token": "s3cret-token\n"},
    {"bearer_token": "s3cret-token\r\nX-Injected: yes"},
    {"headers": {"X-Api-Key": "s3cret-token\r\nX-Injected: yes"}},
    {"headers": {"X-Api-Key": "s3cret-token\x00"}},
    {"headers": {"X-Api-Key": "s3cret-token\n"}},
])
async def test_a_control_character_in_a_configured_header_is_an_invalid_header(
        upstream, make_factory, fields):
    upstream.add("f", DATA)
    with pytest.raises(InvalidHeader, match="cannot be sent") as caught:
        await make_factory(upstream.url, max_retries=3, **fields).build("f").run()
    assert "s3cret" not in str(caught.value)
    assert upstream.hits["f"] == 0, "nothing was sent (and nothing retried)"


async def test_a_header_name_that_is_not_a_token_is_an_invalid_header(upstream, make_factory):
    upstream.add("f", DATA)
    with pytest.raises(InvalidHeader, match="not an HTTP token"):
        await make_factory(upstream.url, headers={"X Bad": "v"}).build("f").run()


@pytest.mark.parametrize("length", [BIG, "99999999999999999999999999"])
async def test_an_overflowing_content_length_is_an_invalid_response(raw_server, make_factory,
                                                                   length):
    url = raw_server("/f", raw_answer("200 OK", {"Content-Length": length}, b"abc"))
    with pytest.raises(InvalidResponse, match="Content-Length") as caught:
        await make_factory(url, max_retries=0).build(url).run()
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("value,seconds", [
    (BIG.encode(), float("inf")), (b"\xb2", None), (b"Fri, 31 Dec 99999 23:59:59 GMT", None),
    (b"120", 120.0),
])
async def test_odd_retry_after_values_are_waited_for_within_the_cap(raw_server, make_factory,
                                                                   value, seconds):
    url = raw_server("/f", raw_answer("503 Busy", {"Retry-After": value}))
    policy = RetryPolicy(base=0.01, cap=0.02, retry_after_cap=0.02)
    with pytest.raises(HttpError) as caught:
        await make_factory(url, max_retries=1, retry_policy=policy).build(url).run()
    assert caught.value.status == 503 and caught.value.retry_after == seconds


def test_parse_retry_after_never_raises():
    for value in ("", " ", "-1", "1.5", "\u0661\u0662", "\xb2", BIG, "Mon, 99 Foo 2020",
                  "Fri, 31 Dec 99999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT"):
        result = parse_retry_after(value)
        assert result is None or result >= 0


async def test_an_overflowing_content_range_on_resume_is_a_download_error(upstream,
                                                                         make_factory):
    upstream.add("f", DATA)

    async def huge_range(request, up):
        return web.Response(status=206, body=DATA[1000:], headers={
            "Content-Range": f"bytes {BIG}-199999/200000", "ETag": f'"{sha256(DATA)[:16]}"'})

    upstream.faults["f"] += [truncate_fault(1000), huge_range]
    factory = make_factory(upstream.url, max_retries=1)
    with pytest.raises(IncompleteDownload):  # the fragment is no file: never resumed or kept
        await factory.build("f", expected_size=len(DATA),
                            expected_digests={"sha256": sha256(DATA)}).run()
    assert upstream.requests[1][2]["Range"] == "bytes=1000-"  # it was a resume


@pytest.mark.parametrize("answer,problem", [
    (json.dumps({"token": "t", "expires_in": 10 ** 400}), "not a positive number"),
    ("[" * 30_000 + "]" * 30_000, "did not return JSON"),  # RecursionError to parse
    ('{"token": "t", "x": ' + "[" * 30_000 + "]" * 30_000 + "}", "did not return JSON"),
    ('{"token": "t", "expires_in": ' + "9" * 5000 + "}", "did not return JSON"),  # int()
    (json.dumps({"token": "t", "expires_in": "1e999"}), "not a positive number"),
    (json.dumps({"token": "t", "expires_in": float("nan")}), "not a positive number"),
    ('{"token": "t", "expires_in": 1' + "0" * 400 + "}", "not a positive number"),
    (json.dumps({"token": "t" * (MAX_TOKEN_ANSWER + 1)}), f"more than {MAX_TOKEN_ANSWER}"),
    (json.dumps({"token": "t" * 100_000}), r"more than 65536 bytes \(64 KiB\)"),
])
async def test_odd_token_answers_are_token_errors(upstream, aiohttp_server, make_factory,
                                                  answer, problem):
    async def token(request):
        return web.Response(text=answer, content_type="application/json")
    challenge_from(upstream, "f", await token_endpoint(aiohttp_server, token))
    with pytest.raises(TokenError, match=problem):
        await asyncio.wait_for(make_factory(upstream.url, max_retries=0).build("f").run(), 30)


async def test_an_endless_token_answer_is_read_only_up_to_the_bound(upstream, aiohttp_server,
                                                                    make_factory):
    sent = 0

    async def endless(request):
        nonlocal sent
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)  # chunked: no length announced
        await response.write(b'{"token": "')
        try:
            while sent < 256 * MAX_TOKEN_ANSWER:  # bounded, should the client not stop
                await response.write(b"t" * 16384)
                sent += 16384
        except (ConnectionError, RuntimeError):
            pass  # the client went away
        return response

    challenge_from(upstream, "f", await token_endpoint(aiohttp_server, endless))
    factory = make_factory(upstream.url, max_retries=0, sock_read_timeout=300)
    with pytest.raises(TokenError, match="more than"):
        await asyncio.wait_for(factory.build("f").run(), 30)
    assert sent < 256 * MAX_TOKEN_ANSWER  # the client stopped reading long before


@pytest.mark.parametrize("raised", [ValueError("bug"), asyncio.CancelledError(), Oddity()])
async def test_whatever_a_callback_raises_is_a_callback_error(upstream, make_factory, raised):
    upstream.add("f", DATA)
    sink = Recorder()
    factory = make_factory(upstream.url, events=sink)

    def progress(size):
        raise raised

    with pytest.raises(CallbackError, match=type(raised).__name__):
        await asyncio.wait_for(factory.build("f", progress=progress).run(), 30)
    assert [kind for kind, _ in sink.events] == ["started", "failed"]
    assert isinstance(sink.events[-1][1], CallbackError)


# --- 2. a cancelled download ends in download_failed, and the in-flight gauge comes back --------
async def test_cancelling_run_sends_download_failed_and_the_gauge_returns_to_zero(
        upstream, failed_signals):
    seen, _ = failed_signals
    asked, release = threading.Event(), asyncio.Event()
    upstream.add("held.bin", DATA)
    upstream.faults["held.bin"].append(held_fault(asked, release))
    name = "gauge-cancel"
    before = in_flight(name)
    async with DownloaderFactory(RemoteConfig(url=upstream.url, name=name),
                                 retry_policy=FAST_RETRIES) as factory:
        task = asyncio.ensure_future(factory.build("held.bin").run())
        await wait_threading(asked)
        assert in_flight(name) == before + 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):  # the caller sees its own cancellation
            await task
    release.set()
    assert [type(error) for error in seen] == [DownloadCanceled]
    assert seen[0].url == upstream.url + "held.bin"
    assert in_flight(name) == before


async def test_a_download_cancelled_by_the_loop_shutting_down_is_counted_out(
        upstream, failed_signals):
    """As when a process stops: asyncio.Runner cancels the tasks still running."""
    seen, _ = failed_signals
    asked, release = threading.Event(), asyncio.Event()
    upstream.add("held.bin", DATA)
    upstream.faults["held.bin"].append(held_fault(asked, release))
    name = "gauge-shutdown"
    before = in_flight(name)
    outcome: list[BaseException] = []

    async def download() -> None:
        factory = DownloaderFactory(RemoteConfig(url=upstream.url, name=name),
                                    retry_policy=FAST_RETRIES)
        try:
            await factory.build("held.bin").run()
        except BaseException as exc:
            outcome.append(exc)
            raise
        finally:
            await factory.close()

    async def main() -> None:
        asyncio.ensure_future(download())
        await asyncio.get_running_loop().run_in_executor(None, asked.wait, 20)
        assert in_flight(name) == before + 1

    def process() -> None:
        with asyncio.Runner() as runner:
            runner.run(main())  # returns with the download running: close() cancels it

    await asyncio.get_running_loop().run_in_executor(None, process)
    release.set()
    assert [type(exc) for exc in outcome] == [asyncio.CancelledError]
    assert [type(error) for error in seen] == [DownloadCanceled]
    assert in_flight(name) == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_streaming_client_leaving_ends_the_download_with_download_failed(
        upstream, asgi_server, failed_signals):
    import aiohttp

    from .content_app import remote_with_units

    seen, arrived = failed_signals
    asked, release = threading.Event(), asyncio.Event()
    url = upstream.add_repo("repo", {"a.bin": DATA})
    upstream.faults["repo/a.bin"].append(held_fault(asked, release))
    remote = await remote_with_units(url, "streamed", {"a.bin": DATA})
    before = in_flight(remote.name)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{asgi_server}/content/{remote.name}/a.bin") as response:
            assert response.status == 200
            await wait_threading(asked)
            assert in_flight(remote.name) == before + 1
    # The client left: the streamed download nobody reads any more is cancelled.
    await wait_threading(arrived)
    release.set()
    assert [type(error) for error in seen] == [DownloadCanceled]
    assert in_flight(remote.name) == before


# --- 3. GroupDownloader reports every group, whatever a callback raises ---------------------------
@pytest.mark.parametrize("raised", [KeyError("boom"), asyncio.CancelledError(), Oddity()])
async def test_the_group_downloader_reports_every_group_whatever_a_callback_raises(
        upstream, make_factory, raised):
    for name in ("ok1", "bad", "ok2", "ok3"):
        upstream.add(name, DATA)
    sink = Recorder()
    factory = make_factory(upstream.url, events=sink)

    def broken(size):
        raise raised

    group = GroupDownloader(concurrency=2)
    group.add("first", [factory.build("ok1")])
    group.add("second", [factory.build("bad", progress=broken), factory.build("ok2")])
    group.add("third", [factory.build("ok3")])
    reports = {r.key: r for r in await asyncio.wait_for(group.run_all(), 30)}
    assert set(reports) == {"first", "second", "third"}
    assert reports["first"].ok and reports["third"].ok
    second = reports["second"]
    assert len(second.results) == 1 and len(second.errors) == 1
    assert isinstance(second.errors[0], CallbackError)
    assert type(raised).__name__ in str(second.errors[0])
    assert sorted(kind for kind, _ in sink.events) == ["failed"] + ["finished"] * 3 + \
        ["started"] * 4


class RaisingDownloader:
    """A downloader whose run() raises what it is given (as a plugin's subclass might)."""

    def __init__(self, url: str, raised: BaseException) -> None:
        self.url, self.raised = url, raised

    async def run(self):
        await asyncio.sleep(0)
        raise self.raised


@pytest.mark.parametrize("raised", [ValueError("x"), asyncio.CancelledError(), Oddity()])
async def test_the_group_downloader_reports_a_downloader_raising_anything(upstream, make_factory,
                                                                          raised):
    upstream.add("ok", DATA)
    group = GroupDownloader(concurrency=1)
    group.add("odd", [RaisingDownloader(upstream.url + "odd", raised)])
    group.add("fine", [make_factory(upstream.url).build("ok")])
    reports = {r.key: r for r in await asyncio.wait_for(group.run_all(), 30)}
    assert reports["fine"].ok
    assert isinstance(reports["odd"].errors[0], DownloadError)
    assert reports["odd"].errors[0].__cause__ is raised


async def test_cancelling_the_group_run_is_not_swallowed_and_cancels_its_downloads(
        upstream, make_factory):
    asked, release = threading.Event(), asyncio.Event()
    upstream.add("held.bin", DATA)
    upstream.faults["held.bin"].append(held_fault(asked, release))
    sink = Recorder()
    group = GroupDownloader()
    group.add("held", [make_factory(upstream.url, events=sink).build("held.bin")])
    task = asyncio.ensure_future(group.run_all())
    await wait_threading(asked)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)
    release.set()
    assert [kind for kind, _ in sink.events] == ["started", "failed"]
    assert isinstance(sink.events[-1][1], DownloadCanceled)


# --- 4. in a sync, whatever one file raises fails that file only ------------------------------------
@pytest.fixture
def started_receiver():
    """Connect ``receiver`` to download_started for the test."""
    connected = []

    def connect(receiver):
        download_started.connect(receiver)
        connected.append(receiver)

    yield connect
    for receiver in connected:
        download_started.disconnect(receiver)


@pytest.mark.parametrize("how", ["malformed redirect", "receiver raises BaseException",
                                 "receiver raises ValueError"])
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_an_unexpected_error_of_one_file_fails_that_file_only(
        upstream, started_receiver, how):
    from pulp_downloads.models import Artifact, Remote
    from pulp_downloads.tasks import run_sync_now

    files = {f"pool/f{i}.bin": os.urandom(5000 + i) for i in range(3)}
    url = upstream.add_repo("repo", files)
    odd = "pool/f1.bin"
    if how == "malformed redirect":
        async def malformed_redirect(request, up):
            return web.Response(status=302, headers={"Location": "http://[::1"})
        upstream.faults[f"repo/{odd}"].append(malformed_redirect)
    else:
        raised = Oddity() if "BaseException" in how else ValueError("receiver bug")

        async def receiver(sender, attachment, **kwargs):
            if getattr(attachment, "relative_path", None) == odd:
                raise raised
        started_receiver(receiver)
    remote = await sync_to_async(Remote.objects.create)(name="odd", url=url, max_retries=0)
    task = await asyncio.wait_for(sync_to_async(run_sync_now)(remote), 60)
    assert task.state == "completed", task.error
    assert "1 of 3" in task.error
    assert [failure["relative_path"] for failure in task.failures] == [odd]
    assert task.summary["downloaded"] == 2 and task.summary["failed"] == 1
    stored = await sync_to_async(set)(Artifact.objects.values_list("sha256", flat=True))
    assert stored == {sha256(data) for path, data in files.items() if path != odd}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_remote_whose_bearer_token_ends_in_a_newline_fails_its_sync_clearly(upstream):
    from pulp_downloads.models import Remote
    from pulp_downloads.tasks import run_sync_now

    url = upstream.add_repo("repo", {"a.bin": DATA})
    remote = await sync_to_async(Remote.objects.create)(name="newline", url=url)
    # A row stored before the model refused such tokens (an update skips validation).
    await sync_to_async(Remote.objects.filter(pk=remote.pk).update)(
        bearer_token="s3cret-token\n")
    remote = await sync_to_async(Remote.objects.get)(pk=remote.pk)
    task = await asyncio.wait_for(sync_to_async(run_sync_now)(remote), 60)
    assert task.state == "failed"
    assert "could not fetch the manifest" in task.error
    assert "Authorization header cannot be sent" in task.error
    assert "s3cret" not in task.error
    assert upstream.hits["repo/PULP_MANIFEST"] == 0
