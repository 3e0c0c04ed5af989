"""Resume across runs: a large download that failed, was cancelled or whose process was
killed keeps its bytes and journal; the next run asks for the rest with Range + If-Range,
and starts again when the upstream's file changed."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pulp_downloads.download import IncompleteDownload
from pulp_downloads.download.config import LibrarySettings
from pulp_downloads.download.partials import PartialFiles, ResumableFileWriter

from .upstream import LOOPBACK_ALLOWED, sha256, stall_fault, truncate_fault
from .waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def ranges_asked(server, path: str) -> list[str | None]:
    return [headers.get("Range") for method, p, headers in server.requests
            if method == "GET" and p == path]


async def test_a_failed_download_keeps_its_bytes_and_the_next_run_resumes(
        upstream, make_factory, tmp_path):
    data = os.urandom(3 * MB)
    url = upstream.add("big.bin", data)
    upstream.faults["big.bin"].append(truncate_fault(MB))
    partials = PartialFiles(tmp_path / "partials")
    settings = LibrarySettings(address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path)
    first = make_factory(upstream.url, settings=settings, max_retries=0)
    with pytest.raises(IncompleteDownload):
        await first.build(url, expected_digests={"sha256": sha256(data)},
                          writer=ResumableFileWriter(partials, sha256(data))).run()
    kept = partials.load(sha256(data))
    assert kept is not None and 0 < kept.size <= MB and kept.validator.startswith('"')

    second = make_factory(upstream.url, settings=settings)  # as a new run would
    result = await second.build(url, expected_digests={"sha256": sha256(data)},
                                writer=ResumableFileWriter(partials, sha256(data))).run()
    assert result.path.read_bytes() == data
    assert ranges_asked(upstream, "big.bin") == [None, f"bytes={kept.size}-"]
    assert partials.load(sha256(data)) is None  # the journal went with the whole file


async def test_a_changed_upstream_file_is_downloaded_whole(upstream, make_factory, tmp_path):
    data = os.urandom(2 * MB)
    url = upstream.add("big.bin", data)
    partials = PartialFiles(tmp_path / "partials")
    key = sha256(data)
    partials.data_path(key).parent.mkdir(parents=True)
    partials.data_path(key).write_bytes(os.urandom(MB))  # bytes of an older file
    partials.record(key, url, '"an-older-etag"')
    settings = LibrarySettings(address_policy=LOOPBACK_ALLOWED, working_directory=tmp_path)
    result = await make_factory(upstream.url, settings=settings).build(
        url, expected_digests={"sha256": key}, writer=ResumableFileWriter(partials, key)).run()
    assert result.path.read_bytes() == data
    assert ranges_asked(upstream, "big.bin") == [f"bytes={MB}-"]  # If-Range said no: 200


@pytest.mark.django_db(transaction=True)
def test_a_killed_sync_is_resumed_by_the_next_one(threaded_upstream, subprocess_env, settings):
    from pulp_downloads.models import Artifact, Remote, SyncTask
    from pulp_downloads.tasks import run_sync_now

    data = os.urandom(4 * MB)
    url = threaded_upstream.add_repo("r", {"big.bin": data})
    threaded_upstream.faults["r/big.bin"].append(
        stall_fault(threaded_upstream.gate(), 2 * MB, resumable=True))  # until the test ends
    Remote.objects.create(name="r", url=url)
    partials = PartialFiles(Path(settings.PULP_DOWNLOADS["WORKING_DIRECTORY"]) / "partials")
    worker = subprocess.Popen([sys.executable, "manage.py", "sync_remote", "r"], cwd=ROOT,
                              env=subprocess_env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        key = sha256(data)

        def wrote_2_mb() -> bool:  # looked at, not loaded: load() is for the download
            journal, written = partials.journal_path(key), partials.data_path(key)
            return (journal.exists() and written.exists()
                    and written.stat().st_size >= 2 * MB - 64 * 1024)  # what reached the disk

        wait_for(wrote_2_mb, "the sync to write 2 MB")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)

    kept = partials.load(sha256(data))  # what the killed process left on disk
    assert kept is not None and MB < kept.size <= 2 * MB
    task = run_sync_now(Remote.objects.get(name="r"))  # the killed task is reaped first
    assert task.state == "completed", task.error
    # The upstream was asked only for the bytes it had not sent yet.
    assert ranges_asked(threaded_upstream, "r/big.bin") == [None, f"bytes={kept.size}-"]
    with Artifact.objects.get().file.open("rb") as fh:
        assert fh.read() == data
    assert SyncTask.objects.filter(state="failed").count() == 1  # the killed one


def test_old_partial_files_are_cleaned_up(tmp_path):
    partials = PartialFiles(tmp_path)
    for key, age in (("old", 10 * 86400), ("new", 60)):
        partials.data_path(key).write_bytes(b"x")
        partials.record(key, "http://127.0.0.1/x", '"v"')
        for path in (partials.data_path(key), partials.journal_path(key)):
            os.utime(path, (time.time() - age, time.time() - age))
    assert partials.cleanup(older_than=7 * 86400) == 2
    assert partials.load("old") is None and partials.load("new") is not None
