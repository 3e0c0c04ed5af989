"""Signals around downloads, Artifacts from finished downloads, and group downloads."""
from __future__ import annotations

import os

import pytest
from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage

from pulp_downloads.download import (
    CallbackError,
    DigestValidationError,
    DownloaderFactory,
    DownloadError,
    GroupDownloader,
    NotFound,
)
from pulp_downloads.models import Artifact, Remote
from pulp_downloads.storage import ArtifactStore
from pulp_downloads.signals import download_failed, download_finished, download_started

from .upstream import FAST_RETRIES, sha256

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]
DATA = os.urandom(1024 * 1024 + 17)


@pytest.fixture
def remote_for(db):
    def make(url: str, **fields) -> Remote:
        remote = Remote(name=f"r{abs(hash(url)) % 10**8}", url=url, **fields)
        remote.save()
        return remote

    return make


@pytest.fixture
def received():
    """Connect one sync and one async receiver to each signal; collect what they saw."""
    seen: list[tuple] = []

    def sync_receiver(signal_name):
        def receiver(sender, **kwargs):
            seen.append(("sync", signal_name, kwargs))
        return receiver

    def async_receiver(signal_name):
        async def receiver(sender, **kwargs):
            seen.append(("async", signal_name, kwargs))
        return receiver

    receivers = []
    for name, signal in (("started", download_started), ("finished", download_finished),
                         ("failed", download_failed)):
        for make in (sync_receiver, async_receiver):
            r = make(name)
            receivers.append((signal, r))
            signal.connect(r)
    yield seen
    for signal, r in receivers:
        signal.disconnect(r)


async def test_signals_carry_result_and_attachment_to_sync_and_async_receivers(
        upstream, remote_for, received):
    url = upstream.add("repo/f", DATA)
    remote = await sync_to_async(remote_for)(upstream.url + "repo/PULP_MANIFEST")
    async with DownloaderFactory(remote, retry_policy=FAST_RETRIES) as factory:
        result = await factory.build(url, attachment={"unit": 7}).run()
    kinds = {(kind, name) for kind, name, _ in received}
    assert kinds == {("sync", "started"), ("async", "started"),
                     ("sync", "finished"), ("async", "finished")}
    finished = [kw for kind, name, kw in received if name == "finished"]
    assert all(kw["result"] is result for kw in finished)
    assert finished[0]["result"].attachment == {"unit": 7}
    assert finished[0]["result"].digests["sha256"] == sha256(DATA)
    started = [kw for kind, name, kw in received if name == "started"][0]
    assert started["url"] == url and started["attachment"] == {"unit": 7}


async def test_async_only_receivers_get_every_signal_and_their_errors_fail_the_download(
        upstream, remote_for):
    url = upstream.add("repo/g", DATA)
    seen = []

    async def on_started(sender, signal, **kwargs):
        seen.append(("started", signal is download_started, kwargs["url"]))

    async def on_finished(sender, signal, **kwargs):
        seen.append(("finished", signal is download_finished, kwargs["result"].size))
        if kwargs["result"].attachment == "fail":
            raise RuntimeError("receiver broke")

    download_started.connect(on_started)
    download_finished.connect(on_finished)
    try:
        remote = await sync_to_async(remote_for)(upstream.url + "repo/PULP_MANIFEST")
        async with DownloaderFactory(remote, retry_policy=FAST_RETRIES) as factory:
            await factory.build(url).run()
            with pytest.raises(CallbackError, match="RuntimeError: receiver broke") as info:
                await factory.build(url, attachment="fail").run()
            assert isinstance(info.value.__cause__, RuntimeError)
    finally:
        download_started.disconnect(on_started)
        download_finished.disconnect(on_finished)
    assert seen == [("started", True, url), ("finished", True, len(DATA))] * 2


async def test_failed_signal_carries_the_error(upstream, remote_for, received):
    remote = await sync_to_async(remote_for)(upstream.url + "PULP_MANIFEST")
    async with DownloaderFactory(remote, retry_policy=FAST_RETRIES) as factory:
        with pytest.raises(NotFound):
            await factory.build(upstream.url + "missing", attachment="a").run()
    failed = [kw for kind, name, kw in received if name == "failed"]
    assert len(failed) == 2
    assert isinstance(failed[0]["error"], NotFound) and failed[0]["attachment"] == "a"


async def test_finished_download_becomes_an_artifact(upstream, remote_for):
    url = upstream.add("repo/f", DATA)
    remote = await sync_to_async(remote_for)(upstream.url + "repo/PULP_MANIFEST")
    async with DownloaderFactory(remote, retry_policy=FAST_RETRIES) as factory:
        result = await factory.build(url, expected_digests={"sha256": sha256(DATA)},
                                     store=ArtifactStore()).run()
        again = await factory.build(url, store=ArtifactStore()).run()
    artifact = result.artifact
    assert isinstance(artifact, Artifact)
    assert again.artifact.pk == artifact.pk, "idempotent on sha256"
    assert await Artifact.objects.acount() == 1
    assert artifact.sha384 and artifact.size == len(DATA)
    with default_storage.open(artifact.file.name) as fh:
        assert fh.read() == DATA
    working = default_storage.path(".working")
    assert not os.path.exists(working) or os.listdir(working) == []


async def test_invalid_download_creates_no_artifact_and_no_file(upstream, remote_for):
    url = upstream.add("repo/f", DATA)
    remote = await sync_to_async(remote_for)(upstream.url + "repo/PULP_MANIFEST")
    async with DownloaderFactory(remote, retry_policy=FAST_RETRIES) as factory:
        with pytest.raises(DigestValidationError):
            await factory.build(url, expected_digests={"sha256": "f" * 64},
                                store=ArtifactStore()).run()
    assert await Artifact.objects.acount() == 0
    working = default_storage.path(".working")
    assert not os.path.exists(working) or os.listdir(working) == []


def test_fetch_from_sync_code_creates_the_artifact(threaded_upstream, remote_for):
    up = threaded_upstream
    url = up.add("repo/f", DATA)
    remote = remote_for(up.url + "repo/PULP_MANIFEST")
    factory = DownloaderFactory(remote, retry_policy=FAST_RETRIES)
    result = factory.build(url, store=ArtifactStore()).fetch()
    assert Artifact.objects.get(sha256=sha256(DATA)).pk == result.artifact.pk


def test_save_artifact_true_is_a_deprecated_alias_of_the_default_store(threaded_upstream,
                                                                        remote_for):
    up = threaded_upstream
    url = up.add("repo/f", DATA)
    factory = DownloaderFactory(remote_for(up.url + "repo/PULP_MANIFEST"),
                                retry_policy=FAST_RETRIES)
    with pytest.warns(DeprecationWarning, match="pass store="):
        downloader = factory.build(url, save_artifact=True)
    assert isinstance(downloader.store, ArtifactStore)
    result = downloader.fetch()
    assert Artifact.objects.get(sha256=sha256(DATA)).pk == result.artifact.pk
    with pytest.warns(DeprecationWarning), pytest.raises(DownloadError, match="not both"):
        factory.build(url, save_artifact=True, store=ArtifactStore())


async def test_group_downloader_reports_each_group_and_isolates_failures(upstream, make_factory):
    factory = make_factory(upstream.url, download_concurrency=4)
    group = GroupDownloader(concurrency=4)
    for unit in range(5):
        urls = [upstream.add(f"u{unit}/{i}", os.urandom(50_000)) for i in range(3)]
        if unit == 2:
            urls.append(upstream.url + "u2/missing")
        group.add(f"unit-{unit}", [factory.build(u) for u in urls])
    group.add("empty", [])
    reports = {report.key: report async for report in group.run()}
    assert set(reports) == {f"unit-{u}" for u in range(5)} | {"empty"}
    assert not reports["unit-2"].ok and isinstance(reports["unit-2"].errors[0], NotFound)
    assert len(reports["unit-2"].results) == 3
    assert all(reports[f"unit-{u}"].ok and len(reports[f"unit-{u}"].results) == 3
               for u in (0, 1, 3, 4))
    assert upstream.max_in_flight <= 4


async def test_group_reports_arrive_as_groups_complete(upstream, make_factory):
    import asyncio

    from .upstream import held_fault

    factory = make_factory(upstream.url, download_concurrency=4)
    gate = upstream.gate()
    upstream.add("slow", b"s" * 20)
    upstream.faults["slow"].append(held_fault(gate))  # held until "quick" was reported
    upstream.add("quick", b"q")
    group = GroupDownloader(concurrency=4)
    group.add("slow", [factory.build("slow")])
    group.add("quick", [factory.build("quick")])
    reports = group.run()
    first = await asyncio.wait_for(anext(reports), 60)
    gate.open()
    order = [first.key] + [report.key async for report in reports]
    assert order == ["quick", "slow"]
