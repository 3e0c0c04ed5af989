"""The store protocol (``build(..., store=sink)``), with a sink that records what it is asked
and what it is handed, against a real loopback server; and what a StoreSession says it
stored."""
from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from pulp_downloads.download import (ArtifactSink, CallbackError, DigestValidationError,
                                     DownloadError, DownloadResult, FactoryDefaults,
                                     LibrarySettings, MemoryWriter, NullWriter, SinkRequest,
                                     TempFileWriter, WriterChoice)
from pulp_downloads.download import factory as factory_module

from .upstream import LOOPBACK_ALLOWED, sha256

DATA = os.urandom(300_000)


class RecordingSink:
    """A sink that keeps what it was asked and handed, in order, and answers as told."""

    def __init__(self, choice: WriterChoice | None = None, made: object = "made",
                 refuse: Exception | None = None) -> None:
        self.choice, self.made, self.refuse = choice, made, refuse
        self.calls: list[tuple[str, object]] = []

    def writer_for(self, request: SinkRequest) -> WriterChoice | None:
        self.calls.append(("writer_for", request))
        return self.choice

    async def accept(self, result: DownloadResult) -> object:
        assert result.path is None or result.path.exists()  # handed over, not removed yet
        self.calls.append(("accept", result))
        if self.refuse is not None:
            raise self.refuse
        return self.made


class RecordingEvents:
    def __init__(self, sink: RecordingSink) -> None:
        self.sink = sink

    async def started(self, downloader) -> None:
        self.sink.calls.append(("started", downloader.url))

    async def finished(self, downloader, result) -> None:
        self.sink.calls.append(("finished", result.artifact))

    async def failed(self, downloader, error) -> None:
        self.sink.calls.append(("failed", type(error).__name__))


@pytest.fixture
def settings_in(tmp_path) -> LibrarySettings:
    return LibrarySettings(address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path / "work")


def test_the_recording_sink_is_an_artifact_sink():
    assert isinstance(RecordingSink(), ArtifactSink)


async def test_the_sink_chooses_the_writer_and_takes_the_result_before_finished(
        upstream, make_factory, settings_in):
    url = upstream.add("f", DATA)
    writer = TempFileWriter(settings_in.working_directory)
    sink = RecordingSink(WriterChoice(writer, ("sha256",)))
    factory = make_factory(upstream.url, settings=settings_in, events=RecordingEvents(sink))
    downloader = factory.build("f", expected_size=len(DATA),
                               expected_digests={"SHA256": sha256(DATA).upper()}, store=sink)
    assert downloader.writer is writer and downloader.algorithms == ("sha256",)

    result = await downloader.run()

    [(_, request), (started, _), (accepted, handed), finished] = sink.calls
    assert request == SinkRequest(url, len(DATA), {"sha256": sha256(DATA)},
                                  settings_in.working_directory)
    assert (started, accepted, finished) == ("started", "accept", ("finished", "made"))
    assert handed is result and result.artifact == "made"
    assert set(result.digests) == {"sha256"}
    assert result.path == writer.path and result.path.read_bytes() == DATA  # the sink's now


async def test_a_sink_answering_none_gets_the_default_writer_and_every_digest(
        upstream, make_factory, settings_in):
    upstream.add("f", DATA)
    sink = RecordingSink(None)
    result = await make_factory(upstream.url, settings=settings_in).build(
        "f", store=sink).run()
    assert [name for name, _ in sink.calls] == ["writer_for", "accept"]
    assert set(result.digests) == set(settings_in.allowed_checksums)
    assert result.path.parent == settings_in.working_directory


async def test_the_sink_is_not_asked_for_a_writer_when_the_caller_gave_one(
        upstream, make_factory, settings_in):
    upstream.add("f", DATA)
    sink = RecordingSink(WriterChoice(NullWriter()))
    writer = MemoryWriter()
    result = await make_factory(upstream.url, settings=settings_in).build(
        "f", writer=writer, digests=("sha256",), store=sink).run()
    assert [name for name, _ in sink.calls] == ["accept"]
    assert result.content == DATA


async def test_a_download_that_fails_validation_never_reaches_the_sink(
        upstream, make_factory, settings_in):
    upstream.add("f", DATA)
    sink = RecordingSink(None)
    with pytest.raises(DigestValidationError):
        await make_factory(upstream.url, settings=settings_in).build(
            "f", expected_digests={"sha256": "0" * 64}, store=sink).run()
    assert [name for name, _ in sink.calls] == ["writer_for"]
    assert list(settings_in.working_directory.iterdir()) == []


async def test_a_sink_that_refuses_fails_the_download_and_its_file_is_removed(
        upstream, make_factory, settings_in):
    upstream.add("f", DATA)
    sink = RecordingSink(None, refuse=OSError("disk full"))
    factory = make_factory(upstream.url, settings=settings_in, events=RecordingEvents(sink))
    with pytest.raises(CallbackError, match="the store raised OSError: disk full") as info:
        await factory.build("f", store=sink).run()
    assert isinstance(info.value.__cause__, OSError)
    assert [name for name, _ in sink.calls] == ["writer_for", "started", "accept", "failed"]
    assert sink.calls[-1] == ("failed", "CallbackError")
    assert list(settings_in.working_directory.iterdir()) == []


async def test_a_failing_finished_receiver_leaves_the_file_to_the_sink_that_took_it(
        upstream, make_factory, settings_in):
    upstream.add("f", DATA)
    sink = RecordingSink(None)

    class Failing(RecordingEvents):
        async def finished(self, downloader, result) -> None:
            raise RuntimeError("a receiver's bug")

    with pytest.raises(CallbackError):
        await make_factory(upstream.url, settings=settings_in, events=Failing(sink)).build(
            "f", store=sink).run()
    [accepted] = [handed for name, handed in sink.calls if name == "accept"]
    assert accepted.path.read_bytes() == DATA


async def test_a_sink_raising_while_choosing_a_writer_fails_the_build(upstream, make_factory,
                                                                      settings_in):
    class Broken(RecordingSink):
        def writer_for(self, request: SinkRequest) -> WriterChoice | None:
            raise ValueError("no room")

    factory = make_factory(upstream.url, settings=settings_in)
    with pytest.raises(CallbackError, match="ValueError choosing a writer: no room"):
        factory.build("f", store=Broken())


async def test_save_artifact_without_a_default_store_is_refused(upstream, make_factory,
                                                                 settings_in, monkeypatch):
    monkeypatch.setattr(factory_module, "_defaults_provider", FactoryDefaults)
    factory = make_factory(upstream.url, settings=settings_in)
    with pytest.warns(DeprecationWarning), pytest.raises(DownloadError,
                                                          match="needs a default store"):
        factory.build("f", save_artifact=True)


# --- a StoreSession says what it stored -----------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_a_store_session_reports_each_batch_it_committed(tmp_path):
    from pulp_downloads.storage import ArtifactStore
    from pulp_downloads.storage.session import Committed

    store = await sync_to_async(ArtifactStore)()
    contents = [os.urandom(5000 + i) for i in range(5)]
    stored_before = hashlib.sha256(contents[0]).hexdigest()
    await sync_to_async(store.store_validated)([(contents[0], {"sha256": stored_before},
                                                 len(contents[0]))])
    session = store.session(batch_size=2)
    reports: list[Committed] = []

    async def read() -> None:
        reports.extend([report async for report in session.committed()])

    reader = asyncio.ensure_future(read())
    results = [DownloadResult(url=f"mem:{i}", final_url=f"mem:{i}", path=None, size=len(data),
                              digests={"sha256": hashlib.sha256(data).hexdigest()},
                              content=data)
               for i, data in enumerate(contents)]
    for result in results:
        await session.accept(result)
    await session.close()
    await asyncio.wait_for(reader, 30)

    assert sum(len(report.results) for report in reports) == len(contents)
    assert {sha for report in reports for sha in report.sha256s} == {
        r.digests["sha256"] for r in results}
    assert {sha for report in reports for sha in report.created} == {
        r.digests["sha256"] for r in results} - {stored_before}
    assert all(not report.refused for report in reports)
    with pytest.raises(RuntimeError, match="over"):
        await session.accept(results[0])


async def test_a_store_session_chooses_writers_by_size(tmp_path):
    from pulp_downloads.download.partials import PartialFiles, ResumableFileWriter
    from pulp_downloads.storage import ArtifactStore
    from pulp_downloads.storage.session import IN_MEMORY_UP_TO, RESUMABLE_FROM

    session = ArtifactStore().session(partials=PartialFiles(tmp_path / "partials"))

    def choice(size: int | None, sha: str | None = "a" * 64) -> WriterChoice:
        digests = {"sha256": sha} if sha else {}
        chosen = session.writer_for(SinkRequest("http://x/f", size, digests, Path(tmp_path)))
        assert chosen is not None
        return chosen

    try:
        small = choice(IN_MEMORY_UP_TO)
        assert isinstance(small.writer, MemoryWriter) and small.digests == ("sha256",)
        medium = choice(IN_MEMORY_UP_TO + 1)
        assert type(medium.writer) is TempFileWriter and medium.digests is None
        assert medium.writer.directory == tmp_path and medium.writer.fsync
        assert isinstance(choice(RESUMABLE_FROM).writer, ResumableFileWriter)
        assert type(choice(RESUMABLE_FROM, sha=None).writer) is TempFileWriter  # no key
        assert type(choice(None).writer) is TempFileWriter  # size unknown
    finally:
        await session.close()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("close_thread_connections")
async def test_artifact_store_store_returns_what_its_batches_committed_and_names_refusals():
    from pulp_downloads.models import Artifact
    from pulp_downloads.storage import ArtifactError, ArtifactStore

    good, bad = os.urandom(3000), os.urandom(4000)
    results = [DownloadResult(url="mem:good", final_url="mem:good", path=None, size=len(good),
                              digests={"sha256": sha256(good)}, content=good),
               DownloadResult(url="mem:bad", final_url="mem:bad", path=None, size=len(bad) + 1,
                              digests={"sha256": sha256(bad)}, content=bad)]
    store = await sync_to_async(ArtifactStore)()
    with pytest.raises(ArtifactError, match=sha256(bad)):
        await store.store(results)
    assert [a.sha256 async for a in Artifact.objects.all()] == [sha256(good)]
    assert await store.store(results[:1]) == [sha256(good)]  # already stored: still named
