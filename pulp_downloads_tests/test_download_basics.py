"""The download library's core contract against a real loopback server."""
from __future__ import annotations

import gc
import hashlib
import os
import threading
import warnings

import pytest

from pulp_downloads.download import (
    DigestValidationError,
    DownloadError,
    DownloadValidationError,
    FileDownloader,
    HttpDownloader,
    LibrarySettings,
    NotFound,
    NullWriter,
    SizeValidationError,
    StreamWriter,
    TeeWriter,
    TempFileWriter,
    UnsupportedDigest,
    UnsupportedURL,
    WriterError,
)
from pulp_downloads.download.digests import Digester
from pulp_downloads.download.ledger import ByteLedger
from pulp_downloads.download.pipeline import BlockPipeline

from .upstream import LOOPBACK_ALLOWED, gzip_bytes, redirect_fault, sha256

DATA = os.urandom(3 * 1024 * 1024 + 123)


async def test_run_downloads_hashes_and_writes_a_temp_file(upstream, make_factory, tmp_path):
    url = upstream.add("repo/a.bin", DATA)
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST",
                           settings=LibrarySettings(working_directory=tmp_path, address_policy=LOOPBACK_ALLOWED))
    downloader = factory.build(url, expected_digests={"sha256": sha256(DATA)}, expected_size=len(DATA))
    assert isinstance(downloader, HttpDownloader)
    result = await downloader.run()
    assert result.size == len(DATA)
    assert result.path.parent == tmp_path
    assert result.path.read_bytes() == DATA
    assert result.digests == {name: hashlib.new(name, DATA).hexdigest()
                              for name in ("sha224", "sha256", "sha384", "sha512")}
    assert result.final_url == url and result.status == 200
    assert result.headers["ETag"]


async def test_relative_urls_resolve_against_the_remote_base(upstream, make_factory):
    upstream.add("repo/sub/b.txt", b"bee")
    factory = make_factory(upstream.url + "repo/PULP_MANIFEST")
    result = await factory.build("sub/b.txt").run()
    assert result.final_url == upstream.url + "repo/sub/b.txt"
    assert result.path.read_bytes() == b"bee"


async def test_zero_length_file_is_a_real_size(upstream, make_factory):
    url = upstream.add("empty", b"")
    result = await make_factory(upstream.url).build(url, expected_size=0,
                                                    expected_digests={"sha256": sha256(b"")}).run()
    assert result.size == 0


async def test_wrong_digest_raises_and_leaves_no_file(upstream, make_factory, tmp_path):
    url = upstream.add("f", DATA)
    factory = make_factory(upstream.url, settings=LibrarySettings(working_directory=tmp_path, address_policy=LOOPBACK_ALLOWED))
    with pytest.raises(DigestValidationError) as info:
        await factory.build(url, expected_digests={"sha256": "0" * 64}).run()
    err = info.value
    assert err.url == url and err.algorithm == "sha256"
    assert err.expected == "0" * 64 and err.actual == sha256(DATA)
    assert url in str(err)
    assert list(tmp_path.iterdir()) == []


async def test_wrong_size_raises_naming_expected_and_actual(upstream, make_factory, tmp_path):
    url = upstream.add("f", b"12345")
    factory = make_factory(upstream.url, settings=LibrarySettings(working_directory=tmp_path, address_policy=LOOPBACK_ALLOWED))
    with pytest.raises(SizeValidationError) as info:
        await factory.build(url, expected_size=4).run()
    assert (info.value.expected, info.value.url) == (4, url)
    assert "expected 4 bytes" in str(info.value)
    with pytest.raises(SizeValidationError) as info:
        await factory.build(url, expected_size=9).run()
    assert info.value.actual == 5
    assert list(tmp_path.iterdir()) == []


async def test_digest_for_a_disallowed_algorithm_is_a_clear_error(upstream, make_factory):
    factory = make_factory(upstream.url)
    with pytest.raises(UnsupportedDigest, match="not allowed"):
        factory.build(upstream.url + "x", expected_digests={"md5": "abc"})
    with pytest.raises(UnsupportedDigest, match="unknown digest"):
        factory.build(upstream.url + "x", expected_digests={"crc99": "abc"})


async def test_validators_run_without_subclassing(upstream, make_factory):
    url = upstream.add("doc.txt", b"hello world")
    seen = []

    def must_say_hello(result):
        seen.append(result.size)
        if not result.path.read_bytes().startswith(b"hello"):
            raise ValueError("not a greeting")

    async def async_check(result):
        seen.append("async")

    factory = make_factory(upstream.url)
    await factory.build(url, validators=[must_say_hello, async_check]).run()
    assert seen == [11, "async"]

    upstream.add("other.txt", b"goodbye")
    with pytest.raises(DownloadValidationError, match="not a greeting"):
        await factory.build(upstream.url + "other.txt", validators=[must_say_hello]).run()


async def test_unknown_scheme_is_a_download_error(make_factory):
    factory = make_factory("http://127.0.0.1:9/")
    with pytest.raises(UnsupportedURL, match="ftp"):
        factory.build("ftp://127.0.0.1/x")


async def test_404_is_not_found_and_not_retried(upstream, make_factory):
    factory = make_factory(upstream.url, max_retries=5)
    with pytest.raises(NotFound) as info:
        await factory.build(upstream.url + "missing").run()
    assert info.value.status == 404
    assert upstream.hits["missing"] == 1


async def test_gzip_encoded_file_is_stored_as_served(upstream, make_factory):
    served = gzip_bytes(b"plain text " * 1000)
    url = upstream.add("pkg.tar.gz", served)
    upstream.gzip_paths.add("pkg.tar.gz")
    result = await make_factory(upstream.url).build(
        url, expected_digests={"sha256": sha256(served)}, expected_size=len(served)).run()
    assert result.path.read_bytes() == served
    assert result.headers["Content-Encoding"] == "gzip"
    method, path, headers = upstream.requests[-1]
    assert headers["Accept-Encoding"] == "identity"


async def test_redirect_is_followed_and_final_url_reported(upstream, make_factory):
    target = upstream.add("new/place", b"moved")
    upstream.faults["old/place"].append(redirect_fault(target))
    result = await make_factory(upstream.url).build(upstream.url + "old/place").run()
    assert result.final_url == target
    assert result.path.read_bytes() == b"moved"


async def test_head_returns_headers_without_the_body(upstream, make_factory):
    url = upstream.add("big", DATA)
    factory = make_factory(upstream.url)
    head = await factory.build(url).head()
    assert head.status == 200 and head.size == len(DATA)
    assert upstream.requests[-1][0] == "HEAD"
    with pytest.raises(SizeValidationError):
        await factory.build(url, expected_size=5).head()


async def test_custom_headers_are_sent_and_remote_config_untouched(upstream, make_factory):
    url = upstream.add("h", b"x")
    factory = make_factory(upstream.url, headers={"X-Repo-Token": "abc"})
    await factory.build(url).run()
    assert upstream.requests[-1][2]["X-Repo-Token"] == "abc"
    assert dict(factory.config.headers) == {"X-Repo-Token": "abc"}


async def test_writers_null_stream_and_tee(upstream, make_factory, tmp_path):
    url = upstream.add("w", DATA)
    factory = make_factory(upstream.url)
    result = await factory.build(url, writer=NullWriter(),
                                 expected_digests={"sha256": sha256(DATA)}).run()
    assert result.path is None and result.size == len(DATA)

    received = bytearray()

    async def consume(block: bytes) -> None:
        received.extend(block)

    file_writer = TempFileWriter(tmp_path)
    result = await factory.build(url, writer=TeeWriter(StreamWriter(consume), file_writer)).run()
    assert bytes(received) == DATA
    assert result.path == file_writer.path and result.path.read_bytes() == DATA


async def test_failed_download_with_tee_writer_leaves_no_file(upstream, make_factory, tmp_path):
    url = upstream.add("w", DATA)
    writer = TeeWriter(NullWriter(), TempFileWriter(tmp_path))
    with pytest.raises(DigestValidationError):
        await make_factory(upstream.url).build(url, writer=writer,
                                               expected_digests={"sha256": "1" * 64}).run()
    assert list(tmp_path.iterdir()) == []


async def test_attachment_and_progress_callback(upstream, make_factory):
    url = upstream.add("p", DATA)
    progress = []
    marker = object()
    result = await make_factory(upstream.url).build(url, attachment=marker,
                                                    progress=progress.append).run()
    assert result.attachment is marker
    assert sum(progress) == len(DATA)


async def test_factory_closes_without_unclosed_session_warning(upstream, make_factory):
    url = upstream.add("c", b"c")
    gc.collect()  # garbage of earlier tests must not be counted against this factory
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with make_factory(upstream.url) as factory:
            await factory.build(url).run()
        session = factory.context._states
        assert session == {}
        del factory
        gc.collect()
    assert not [str(w.message) for w in caught if "Unclosed" in str(w.message)]


def test_fetch_works_from_sync_code_and_from_a_worker_thread(upstream_sync):
    upstream, factory = upstream_sync
    url = upstream.add("s", DATA)
    result = factory.build(url, expected_digests={"sha256": sha256(DATA)}).fetch()
    assert result.size == len(DATA)
    outcome = {}

    def in_thread():
        outcome["result"] = factory.build(url).fetch()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(30)
    assert outcome["result"].digests["sha256"] == sha256(DATA)
    assert factory.context._states == {}, "fetch() closes the sessions it opened"


@pytest.fixture
def upstream_sync(threaded_upstream):
    from pulp_downloads.download import DownloaderFactory, RemoteConfig

    from .upstream import FAST_RETRIES

    factory = DownloaderFactory(RemoteConfig(url=threaded_upstream.url),
                                retry_policy=FAST_RETRIES, events=None)
    return threaded_upstream, factory


async def test_file_downloader_reads_under_allowed_roots(make_factory, tmp_path):
    root = tmp_path / "root"
    (root / "repo").mkdir(parents=True)
    (root / "repo" / "f.bin").write_bytes(DATA)
    settings = LibrarySettings(file_roots=(root,), working_directory=tmp_path / "work",
                               address_policy=LOOPBACK_ALLOWED)
    factory = make_factory(f"file://{root}/repo/PULP_MANIFEST", settings=settings)
    downloader = factory.build("f.bin", expected_digests={"sha256": sha256(DATA)})
    assert isinstance(downloader, FileDownloader)
    result = await downloader.run()
    assert result.path.read_bytes() == DATA
    head = await factory.build("f.bin").head()
    assert head.size == len(DATA)
    with pytest.raises(NotFound):
        await factory.build("nope.bin").run()
    with pytest.raises(UnsupportedURL, match="outside the directories allowed for file:// URLs"):
        await factory.build(f"file://{tmp_path}/elsewhere").run()
    with pytest.raises(UnsupportedURL):
        await factory.build(f"file://{root}/repo/../../x").run()


async def test_download_errors_never_leak_aiohttp_exceptions(make_factory):
    factory = make_factory("http://127.0.0.1:9/", max_retries=0)
    with pytest.raises(DownloadError) as info:
        await factory.build("http://127.0.0.1:9/x").run()
    assert type(info.value).__module__ == "pulp_downloads.download.exceptions"
    assert info.value.url == "http://127.0.0.1:9/x"


async def test_large_blocks_are_hashed_and_written_off_the_event_loop(tmp_path):
    threads = set()

    class Spy:
        def __init__(self, name):
            self.inner = hashlib.new(name)

        def update(self, block):
            if len(block) > 4:  # the small head block is hashed inline, by design
                threads.add(threading.current_thread().name)
            self.inner.update(block)

        def hexdigest(self):
            return self.inner.hexdigest()

    digester = Digester(["sha256", "sha512"])
    digester.hashers = [Spy("sha256"), Spy("sha512")]
    ledger = ByteLedger(digester)
    writer = TempFileWriter(tmp_path)
    await writer.open()
    pipeline = BlockPipeline("http://x/", ledger, writer)
    # A small first block is processed before the lanes start; the ledger counts it too.
    blocks = [b"head", *(os.urandom(1 << 20) for _ in range(5))]
    for block in blocks:
        await pipeline.feed(block)
    await pipeline.close()
    await writer.finish()
    assert threads and threading.current_thread().name not in threads
    assert digester.hexdigests()["sha256"] == sha256(b"".join(blocks))
    assert not ledger.in_doubt
    assert ledger.offset == (5 << 20) + 4
    assert writer.path.read_bytes() == b"".join(blocks)


async def test_a_failing_writer_is_a_writer_error_not_a_retry(upstream, make_factory):
    url = upstream.add("f", DATA)

    async def broken(block):
        raise ConnectionResetError("client went away")

    with pytest.raises(WriterError, match="client went away"):
        await make_factory(upstream.url, max_retries=3).build(url, writer=StreamWriter(broken)).run()
    assert upstream.hits["f"] == 1


async def test_digests_can_be_narrowed_to_what_is_needed(upstream, make_factory):
    url = upstream.add("n", DATA)
    factory = make_factory(upstream.url)
    result = await factory.build(url, digests=("sha256",),
                                 expected_digests={"sha256": sha256(DATA)}).run()
    assert result.digests == {"sha256": sha256(DATA)}
    with pytest.raises(UnsupportedDigest, match="would not be computed"):
        factory.build(url, digests=("sha512",), expected_digests={"sha256": sha256(DATA)})
    with pytest.raises(UnsupportedDigest, match="not allowed"):
        factory.build(url, digests=("md5",))


async def test_a_durable_file_past_its_early_flushes_is_whole(upstream, make_factory, tmp_path):
    data = os.urandom(20 * 1024 * 1024 + 5)  # past the first early flush (every 16 MiB)
    url = upstream.add("big", data)
    settings = LibrarySettings(working_directory=tmp_path, address_policy=LOOPBACK_ALLOWED)
    writer = TempFileWriter(tmp_path, fsync=True)
    result = await make_factory(upstream.url, settings=settings).build(
        url, expected_digests={"sha256": sha256(data)}, expected_size=len(data),
        writer=writer).run()
    assert result.path.read_bytes() == data
    assert result.digests["sha512"] == hashlib.sha512(data).hexdigest()
