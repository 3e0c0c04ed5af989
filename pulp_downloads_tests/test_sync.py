"""The sync pipeline: manifest -> ContentUnits -> downloads -> Artifacts."""
from __future__ import annotations

import asyncio
import hashlib
import os
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.utils import timezone

from pulp_downloads.models import Artifact, ContentUnit, PendingArtifactFile, Remote, SyncTask
from pulp_downloads.sync import SyncError, async_sync_remote
from pulp_downloads.tasks import SyncAlreadyActive, enqueue_sync, run_sync_now

from .upstream import sha256, status_fault, truncate_fault

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]
SHA = "a" * 64


def files(n: int, size: int = 20_000, prefix: str = "pool/f") -> dict[str, bytes]:
    return {f"{prefix}{i:03d}.bin": os.urandom(size) for i in range(n)}


@sync_to_async
def make_remote(url: str, **fields) -> Remote:
    fields.setdefault("name", "repo")
    return Remote.objects.create(url=url, **fields)


# --- sync ---------------------------------------------------------------------------------------
async def test_immediate_sync_stores_every_file_and_links_units(upstream):
    content = files(12)
    remote = await make_remote(upstream.add_repo("repo", content))
    progress = []
    summary = await async_sync_remote(remote, progress=progress.append, progress_interval=0.05)
    assert summary.listed == 12 and summary.downloaded == 12 and summary.failed == 0
    assert summary.bytes_downloaded == sum(len(d) for d in content.values())
    units = [u async for u in ContentUnit.objects.filter(remote=remote).select_related("artifact")]
    assert len(units) == 12 and all(u.artifact is not None for u in units)
    for unit in units:
        with default_storage.open(unit.artifact.file.name) as fh:
            assert fh.read() == content[unit.relative_path]
    final = progress[-1]
    assert (final.files_done, final.files_total) == (12, 12)
    assert final.bytes_done == final.bytes_total == summary.bytes_downloaded


async def test_a_sync_prepares_the_artifact_fanout_directories(upstream):
    from pulp_downloads.storage.paths import ARTIFACT_FANOUT

    remote = await make_remote(upstream.add_repo("repo", files(2)))
    await async_sync_remote(remote)
    root = default_storage.path("artifact")
    assert sorted(os.listdir(root)) == ARTIFACT_FANOUT


async def test_many_small_and_large_files_are_stored_across_batches(upstream):
    from pulp_downloads.storage.session import IN_MEMORY_UP_TO

    content = {**files(23, size=3_000, prefix="small/"),
               **files(4, size=IN_MEMORY_UP_TO + 1, prefix="large/")}
    remote = await make_remote(upstream.add_repo("repo", content))
    summary = await async_sync_remote(remote, batch_size=4)
    assert summary.downloaded == 27 and summary.failed == 0
    units = [u async for u in ContentUnit.objects.filter(remote=remote).select_related("artifact")]
    assert len(units) == 27
    for unit in units:
        assert unit.size == len(content[unit.relative_path])
        assert unit.created is not None and unit.updated is not None
        with default_storage.open(unit.artifact.file.name) as fh:
            assert fh.read() == content[unit.relative_path]
        assert unit.artifact.sha384 == hashlib.sha384(content[unit.relative_path]).hexdigest()


async def test_second_sync_downloads_nothing(upstream):
    content = files(5)
    remote = await make_remote(upstream.add_repo("repo", content))
    await async_sync_remote(remote)
    hits = dict(upstream.hits)
    summary = await async_sync_remote(remote)
    assert summary.downloaded == 0 and summary.already_present == 5
    new_hits = {k: v - hits.get(k, 0) for k, v in upstream.hits.items() if v != hits.get(k, 0)}
    assert new_hits == {"repo/PULP_MANIFEST": 1}


async def test_identical_content_under_two_paths_is_downloaded_once(upstream):
    data = os.urandom(5000)
    remote = await make_remote(upstream.add_repo("repo", {"a.bin": data, "b/a-copy.bin": data}))
    summary = await async_sync_remote(remote)
    assert summary.downloaded == 1 and summary.listed == 2
    assert await Artifact.objects.acount() == 1
    assert await ContentUnit.objects.filter(artifact__isnull=False).acount() == 2


@pytest.mark.parametrize("policy", ["on_demand", "streamed"])
async def test_lazy_policies_record_units_only(upstream, policy):
    remote = await make_remote(upstream.add_repo("repo", files(4)), policy=policy)
    summary = await async_sync_remote(remote)
    assert summary.listed == 4 and summary.downloaded == 0
    assert await ContentUnit.objects.filter(remote=remote, artifact__isnull=True).acount() == 4
    assert await Artifact.objects.acount() == 0
    assert set(upstream.hits) == {"repo/PULP_MANIFEST"}


async def test_units_follow_the_manifest_insert_update_delete(upstream):
    content = files(3)
    url = upstream.add_repo("repo", content)
    remote = await make_remote(url)
    await async_sync_remote(remote)
    changed = dict(content)
    del changed["pool/f000.bin"]
    changed["pool/f001.bin"] = b"new bytes"
    changed["pool/new.bin"] = b"added"
    upstream.add_repo("repo", changed)
    summary = await async_sync_remote(remote)
    assert summary.downloaded == 2
    units = {u.relative_path: u async for u in ContentUnit.objects.filter(remote=remote)
             .select_related("artifact")}
    assert set(units) == {"pool/f001.bin", "pool/f002.bin", "pool/new.bin"}
    assert units["pool/f001.bin"].sha256 == sha256(b"new bytes")
    assert units["pool/f001.bin"].artifact.sha256 == sha256(b"new bytes")


async def test_a_failed_file_does_not_stop_the_others_and_rerun_resumes(upstream):
    content = files(6)
    remote = await make_remote(upstream.add_repo("repo", content), max_retries=0)
    upstream.faults["repo/pool/f003.bin"].append(status_fault(500))
    with pytest.raises(SyncError) as info:
        await async_sync_remote(remote)
    summary = info.value.summary
    assert summary.downloaded == 5 and summary.failed == 1
    assert summary.failures[0]["relative_path"] == "pool/f003.bin"
    assert "HTTP 500" in summary.failures[0]["error"]
    unit = await ContentUnit.objects.aget(remote=remote, relative_path="pool/f003.bin")
    assert "HTTP 500" in unit.last_error and unit.artifact_id is None
    summary = await async_sync_remote(remote)
    assert summary.downloaded == 1 and summary.already_present == 5
    unit = await ContentUnit.objects.aget(remote=remote, relative_path="pool/f003.bin")
    assert unit.artifact_id is not None and unit.last_error == ""


async def test_when_every_file_fails_the_units_are_recorded_with_their_errors(upstream):
    content = files(3)
    remote = await make_remote(upstream.add_repo("repo", content), max_retries=0)
    for path in content:
        upstream.faults[f"repo/{path}"].append(status_fault(503))
    with pytest.raises(SyncError, match="3 of 3 file"):
        await async_sync_remote(remote)
    units = [u async for u in ContentUnit.objects.filter(remote=remote)]
    assert sorted(u.relative_path for u in units) == sorted(content)
    assert all("HTTP 503" in u.last_error and u.artifact_id is None for u in units)


async def test_bad_manifest_fails_before_anything_is_downloaded(upstream):
    url = upstream.add_repo("repo", files(3), extra_lines="broken line\n")
    remote = await make_remote(url)
    with pytest.raises(SyncError, match="line 4"):
        await async_sync_remote(remote)
    assert set(upstream.hits) == {"repo/PULP_MANIFEST"}
    assert await ContentUnit.objects.acount() == 0


async def test_manifest_path_escaping_the_repo_is_refused(upstream):
    url = upstream.add_repo("repo", {}, extra_lines=f"../../etc/passwd,{SHA},3\n")
    remote = await make_remote(url)
    with pytest.raises(SyncError, match="escapes"):
        await async_sync_remote(remote)


async def test_missing_manifest_is_a_clear_error(upstream):
    remote = await make_remote(upstream.url + "nothing/PULP_MANIFEST")
    with pytest.raises(SyncError, match="could not fetch the manifest.*404"):
        await async_sync_remote(remote)


async def test_wrong_bytes_upstream_fail_validation_and_store_nothing(upstream):
    url = upstream.add_repo("repo", {"a.bin": b"expected"})
    upstream.files["repo/a.bin"] = b"tampered"
    remote = await make_remote(url, max_retries=0)
    with pytest.raises(SyncError) as info:
        await async_sync_remote(remote)
    assert "size mismatch" in info.value.summary.failures[0]["error"] or \
        "digest mismatch" in info.value.summary.failures[0]["error"]
    assert await Artifact.objects.acount() == 0


async def test_paths_with_spaces_and_hashes_are_quoted(upstream):
    data = b"odd name"
    url = upstream.add_repo("repo", {"dir with space/a#b?.txt": data})
    remote = await make_remote(url)
    summary = await async_sync_remote(remote)
    assert summary.downloaded == 1


async def test_sync_without_a_store_helper_stores_in_process(upstream, monkeypatch):
    from pulp_downloads.storage.helper import StoreHelper

    async def cannot_start(*args, **kwargs):
        raise OSError("no processes here")

    monkeypatch.setattr(StoreHelper, "start", cannot_start)
    content = files(9, size=5_000)
    remote = await make_remote(upstream.add_repo("repo", content))
    summary = await async_sync_remote(remote, batch_size=4)
    assert summary.downloaded == 9
    for artifact in [a async for a in Artifact.objects.all()]:
        data = next(d for d in content.values() if sha256(d) == artifact.sha256)
        assert artifact.digests == {name: hashlib.new(name, data).hexdigest()
                                    for name in ("sha224", "sha256", "sha384", "sha512")}
        with default_storage.open(artifact.file.name) as fh:
            assert fh.read() == data


async def test_a_store_helper_dying_mid_sync_fails_the_sync_cleanly_and_rerun_completes(
        upstream, monkeypatch):
    from pulp_downloads.storage.helper import StoreHelper

    calls = []
    real_write = StoreHelper.write

    async def dies_on_second_batch(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            self._process.kill()
        return await real_write(self, *args, **kwargs)

    monkeypatch.setattr(StoreHelper, "write", dies_on_second_batch)
    content = files(40, size=3_000)
    remote = await make_remote(upstream.add_repo("repo", content))
    # Small batches fill the queue of finished downloads: the sync must not wait forever.
    with pytest.raises(SyncError, match="could not store the downloaded files.*gone"):
        await asyncio.wait_for(async_sync_remote(remote, batch_size=2), 60)
    async for artifact in Artifact.objects.all():  # every committed Artifact is whole
        with default_storage.open(artifact.file.name) as fh:
            assert sha256(fh.read()) == artifact.sha256
    monkeypatch.setattr(StoreHelper, "write", real_write)
    stored_before = await Artifact.objects.acount()
    assert 2 <= stored_before < 40
    summary = await async_sync_remote(remote)
    assert summary.downloaded == 40 - stored_before and summary.failed == 0
    assert await Artifact.objects.acount() == 40


async def test_orphan_files_of_an_interrupted_store_are_cleaned_up(upstream, settings):
    settings.PULP_DOWNLOADS = dict(settings.PULP_DOWNLOADS, ORPHAN_CLEANUP_AGE=60)
    orphan = "artifact/ab/" + "c" * 62
    await sync_to_async(default_storage.save)(orphan, __import__("io").BytesIO(b"x"))
    await PendingArtifactFile.objects.acreate(
        sha256="ab" + "c" * 62, path=orphan, created=timezone.now() - timedelta(minutes=5))
    remote = await make_remote(upstream.add_repo("repo", files(1)))
    await async_sync_remote(remote)
    assert not default_storage.exists(orphan)
    assert await PendingArtifactFile.objects.acount() == 0


# --- sync tasks ---------------------------------------------------------------------------------
async def test_run_sync_now_records_a_completed_task(upstream):
    remote = await make_remote(upstream.add_repo("repo", files(3)))
    task = await sync_to_async(run_sync_now)(remote)
    assert task.state == "completed" and task.summary["downloaded"] == 3
    assert task.files_done == task.files_total == 3
    assert task.started and task.finished and task.error == ""


async def test_a_sync_with_some_failed_files_completes_and_lists_them(upstream):
    remote = await make_remote(upstream.add_repo("repo", files(2)), max_retries=0)
    upstream.faults["repo/pool/f001.bin"].append(status_fault(404))
    task = await sync_to_async(run_sync_now)(remote)
    assert task.state == "completed" and "1 of 2" in task.error
    assert task.summary["failed"] == 1 and task.summary["downloaded"] == 1
    assert task.failures[0]["relative_path"] == "pool/f001.bin"
    # A failed file is counted as failed, not done.
    assert (task.files_done, task.files_failed, task.files_total) == (1, 1, 2)
    assert task.bytes_done <= task.bytes_total


async def test_a_sync_where_every_download_failed_is_failed(upstream):
    remote = await make_remote(upstream.add_repo("repo", files(2)), max_retries=0)
    for name in ("pool/f000.bin", "pool/f001.bin"):
        upstream.faults[f"repo/{name}"].append(status_fault(404))
    task = await sync_to_async(run_sync_now)(remote)
    assert task.state == "failed" and "2 of 2" in task.error
    assert (task.files_done, task.files_failed) == (0, 2)


async def test_progress_counts_each_byte_once_across_retries(upstream):
    content = files(3, size=300_000)
    remote = await make_remote(upstream.add_repo("repo", content), max_retries=3)
    upstream.faults["repo/pool/f000.bin"].append(truncate_fault(200_000))  # cut, then resumed
    seen = []
    task = await sync_to_async(run_sync_now)(remote, progress=lambda s: seen.append(
        (s.files_done, s.bytes_done)))
    assert task.state == "completed" and upstream.hits["repo/pool/f000.bin"] == 2
    assert task.bytes_done == task.bytes_total == 900_000
    assert all(b <= 900_000 for _, b in seen)
    assert seen == sorted(seen)  # never goes back


async def test_on_demand_sync_says_nothing_was_downloaded(upstream):
    remote = await make_remote(upstream.add_repo("repo", files(3)), policy="on_demand")
    task = await sync_to_async(run_sync_now)(remote)
    assert task.state == "completed"
    assert task.summary["downloaded"] == 0 and task.summary["deferred"] == 3
    assert task.files_done == 0 and task.bytes_done == 0


async def test_enqueue_runs_the_task_and_refuses_a_second_active_sync(upstream):
    remote = await make_remote(upstream.add_repo("repo", files(2)))
    task = await sync_to_async(enqueue_sync)(remote)
    assert task.state == "completed" and task.backend_task_id
    await SyncTask.objects.acreate(remote=remote, state="waiting")
    with pytest.raises(SyncAlreadyActive, match="already waiting"):
        await sync_to_async(enqueue_sync)(remote)


async def test_a_sync_whose_worker_died_does_not_block_the_next(upstream):
    remote = await make_remote(upstream.add_repo("repo", files(1)))
    host = SyncTask.this_worker().rpartition(":")[0]
    dead = await SyncTask.objects.acreate(remote=remote, state="running", started=timezone.now(),
                                          heartbeat=timezone.now(), worker=f"{host}:999999")
    task = await sync_to_async(run_sync_now)(remote)
    assert task.state == "completed"
    await dead.arefresh_from_db()
    assert dead.state == "failed" and "stopped" in dead.error


@pytest.mark.django_db(transaction=True)
def test_units_are_inserted_in_statements_within_the_parameter_limit():
    remote = Remote.objects.create(name="many", url="https://example.test/PULP_MANIFEST")
    listed = [(f"dir/file-{i:05d}.bin", f"{i:064x}", i) for i in range(1234)]
    ContentUnit.insert_new(remote.pk, listed)
    units = list(ContentUnit.objects.filter(remote=remote).order_by("relative_path")
                 .values_list("relative_path", "sha256", "size"))
    assert units == listed


async def test_a_file_that_is_not_a_manifest_is_not_quoted_in_the_error(upstream):
    secret_text = "root:x:0:0:SECRET-LINE:/root:/bin/bash\n"
    upstream.add("etc/passwd", secret_text.encode())
    remote = await make_remote(upstream.url + "etc/passwd")
    with pytest.raises(SyncError) as info:
        await async_sync_remote(remote)
    assert "line 1" in str(info.value)
    assert "SECRET-LINE" not in str(info.value) and "root" not in str(info.value)
