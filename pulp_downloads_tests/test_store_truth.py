"""Storage tells the truth: the store refuses a placed file of another size than recorded, the
content app never starts a 200 it cannot finish, a sync puts back the files missing from
storage and says so, and ``artifact_stored`` tells new content from content already there."""
from __future__ import annotations

import io
import os
from pathlib import Path

import aiohttp
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.core.management import call_command
from django.test import AsyncClient

from pulp_downloads.conf import app_settings
from pulp_downloads.download.digests import digests_of
from pulp_downloads.models import Artifact, ContentUnit, PendingArtifactFile, Remote, SyncTask
from pulp_downloads.signals import artifact_stored
from pulp_downloads.storage import ArtifactError, ArtifactStore, artifact_path
from pulp_downloads.storage import batch as batch_module
from pulp_downloads.sync import async_sync_remote
from pulp_downloads.sync.summary import PartialSyncError

from .content_app import DATA, get, remote_with_units, wait_for_artifact
from .upstream import sha256

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]


def stored_path(data: bytes) -> Path:
    """Where local storage keeps the file of ``data``."""
    return Path(django_settings.MEDIA_ROOT) / artifact_path(sha256(data))


def shortening_placer(victim: bytes, keep: int):
    """A ``place_local`` that loses the end of the file of ``victim`` once placed (a faulty
    disk or copy): only ``keep`` bytes stay."""
    real = batch_module.place_local
    name = artifact_path(sha256(victim))

    def place(temp_path: Path, destination: Path) -> None:
        real(temp_path, destination)
        if destination.as_posix().endswith(name):
            os.truncate(destination, keep)

    return place


# --- the store ------------------------------------------------------------------------------

def test_a_file_of_another_size_than_recorded_is_refused_removed_and_named(tmp_path):
    allowed = app_settings().allowed_checksums
    good, bad = os.urandom(5000), os.urandom(7000)
    items = []
    for name, data, recorded in (("good", good, len(good)), ("bad", bad, len(bad) - 1)):
        path = tmp_path / name
        path.write_bytes(data)
        items.append((path, digests_of(data, allowed), recorded))

    with pytest.raises(ArtifactError) as refused:
        ArtifactStore().store_validated(items)

    message = str(refused.value)
    assert sha256(bad) in message and artifact_path(sha256(bad)) in message
    assert "7000 bytes" in message and "6999 bytes" in message
    assert not Artifact.objects.filter(sha256=sha256(bad)).exists()
    assert not stored_path(bad).exists()
    assert Artifact.objects.get(sha256=sha256(good)).size == len(good)
    assert stored_path(good).read_bytes() == good
    assert not PendingArtifactFile.objects.exists()


async def test_a_sync_counts_a_file_the_store_refuses_as_failed_and_stores_the_rest(
        upstream, monkeypatch):
    files = {"big.bin": os.urandom(300_000), "medium.bin": os.urandom(100_000),
             "small.bin": os.urandom(2000)}
    monkeypatch.setattr(batch_module, "place_local",
                        shortening_placer(files["big.bin"], keep=250_000))
    remote = await sync_to_async(Remote.objects.create)(
        name="r", url=upstream.add_repo("repo", files))

    with pytest.raises(PartialSyncError) as partial:
        await async_sync_remote(remote)

    summary = partial.value.summary
    assert (summary.downloaded, summary.failed) == (2, 1)
    [failure] = summary.failures
    assert failure["relative_path"] == "big.bin"
    assert sha256(files["big.bin"]) in failure["error"]
    assert "250000 bytes" in failure["error"] and "300000 bytes" in failure["error"]
    assert not await Artifact.objects.filter(sha256=sha256(files["big.bin"])).aexists()
    assert not stored_path(files["big.bin"]).exists()
    unit = await ContentUnit.objects.aget(remote=remote, relative_path="big.bin")
    assert unit.artifact_id is None and "refused" in unit.last_error
    for name in ("medium.bin", "small.bin"):
        assert stored_path(files[name]).read_bytes() == files[name]
    assert not await PendingArtifactFile.objects.aexists()

    monkeypatch.undo()  # the disk is fine again: the next sync stores the file
    summary = await async_sync_remote(remote)
    assert (summary.downloaded, summary.already_present, summary.failed) == (1, 2, 0)
    assert stored_path(files["big.bin"]).read_bytes() == files["big.bin"]


# --- the content app ------------------------------------------------------------------------

async def _remote_serving(upstream, policy: str, data: bytes) -> Remote:
    """A remote listing ``a.bin`` (``data``), synced under ``immediate``."""
    url = upstream.add_repo("repo", {"a.bin": data})
    remote = await remote_with_units(url, policy, {"a.bin": data})
    if policy == "immediate":
        await async_sync_remote(remote)
    return remote


async def test_a_truncated_stored_file_is_503_with_retry_after_on_the_fast_path(
        upstream, asgi_server):
    from pulp_downloads.content.asgi import stored_files

    data = DATA[:100_000]
    remote = await _remote_serving(upstream, "immediate", data)
    base = f"{asgi_server}/content/{remote.name}/a.bin"
    status, _, body = await get(base)
    assert status == 200 and body == data
    assert (remote.name, "a.bin") in stored_files._entries  # answered by the fast path
    os.truncate(stored_path(data), 60_000)

    status, headers, body = await get(base)
    assert status == 503 and "Retry-After" in headers and b"missing or damaged" in body
    async with aiohttp.ClientSession() as session:
        async with session.head(base) as response:
            assert response.status == 503 and "Retry-After" in response.headers
    assert (remote.name, "a.bin") not in stored_files._entries


async def test_a_truncated_stored_file_is_503_with_retry_after_from_the_view(upstream):
    data = DATA[:100_000]
    remote = await _remote_serving(upstream, "immediate", data)
    os.truncate(stored_path(data), 60_000)

    response = await AsyncClient().get(f"/content/{remote.name}/a.bin")

    assert response.status_code == 503 and response.has_header("Retry-After")
    assert b"missing or damaged" in response.content


async def test_a_truncated_stored_file_is_fetched_from_upstream_under_on_demand(
        upstream, asgi_server):
    data = DATA[:70_000]
    remote = await _remote_serving(upstream, "on_demand", data)
    base = f"{asgi_server}/content/{remote.name}/a.bin"
    status, _, body = await get(base)
    assert status == 200 and body == data
    await wait_for_artifact(sha256(data))
    os.truncate(stored_path(data), 1000)

    status, _, body = await get(base)

    assert status == 200 and body == data
    assert upstream.hits["repo/a.bin"] == 2


# --- a sync checks storage ------------------------------------------------------------------

async def test_a_resync_fetches_again_missing_and_truncated_files_and_counts_them(upstream):
    files = {"a.bin": os.urandom(3000), "b.bin": os.urandom(90_000),
             "c.bin": os.urandom(300_000), "d.bin": os.urandom(4000)}
    remote = await sync_to_async(Remote.objects.create)(
        name="r", url=upstream.add_repo("repo", files))
    await async_sync_remote(remote)
    os.truncate(stored_path(files["c.bin"]), 100)
    os.unlink(stored_path(files["a.bin"]))

    summary = await async_sync_remote(remote)

    assert (summary.already_present, summary.downloaded, summary.restored) == (2, 2, 2)
    for name, data in files.items():
        assert stored_path(data).read_bytes() == data, name
    summary = await async_sync_remote(remote)
    assert (summary.already_present, summary.downloaded, summary.restored) == (4, 0, 0)


# --- artifact_stored ------------------------------------------------------------------------

async def test_artifact_stored_tells_new_from_already_present_across_two_syncs(upstream):
    events: list[tuple[str, bool, bool, bool]] = []

    def count(sender, remote, sha256, attachment, created, restored, **kwargs) -> None:
        # Sent once the batch committed: the Artifact exists and the unit points at it.
        unit = ContentUnit.objects.get(remote=remote, relative_path=attachment.relative_path)
        linked = unit.artifact_id is not None and Artifact.objects.filter(
            pk=unit.artifact_id, sha256=sha256).exists()
        events.append((attachment.relative_path, created, restored, linked))

    shared = os.urandom(2000)
    files = {"a.bin": shared, "copy-of-a.bin": shared, "b.bin": os.urandom(5000),
             "big.bin": os.urandom(300_000)}
    remote = await sync_to_async(Remote.objects.create)(
        name="r", url=upstream.add_repo("repo", files))
    artifact_stored.connect(count, dispatch_uid="test-count")
    try:
        first = await async_sync_remote(remote)
        first_events = sorted(events)
        events.clear()
        upstream.add_repo("repo", {**files, "new.bin": os.urandom(7000)})
        os.unlink(stored_path(files["b.bin"]))  # put back by the second sync
        second = await async_sync_remote(remote)
    finally:
        artifact_stored.disconnect(dispatch_uid="test-count")

    assert first.downloaded == 3
    assert first_events == [(path, True, False, True) for path in sorted(files)]
    assert (second.already_present, second.downloaded, second.restored) == (3, 2, 1)
    assert sorted(events) == [
        ("a.bin", False, False, True), ("b.bin", False, True, True),
        ("big.bin", False, False, True), ("copy-of-a.bin", False, False, True),
        ("new.bin", True, False, True)]


async def test_a_failing_artifact_stored_receiver_does_not_stop_the_sync(upstream):
    def fail(sender, **kwargs) -> None:
        raise RuntimeError("a plugin's bug")

    files = {"a.bin": os.urandom(2000), "b.bin": os.urandom(200_000)}
    remote = await sync_to_async(Remote.objects.create)(
        name="r", url=upstream.add_repo("repo", files))
    artifact_stored.connect(fail, dispatch_uid="test-fail")
    try:
        summary = await async_sync_remote(remote)
    finally:
        artifact_stored.disconnect(dispatch_uid="test-fail")
    assert (summary.downloaded, summary.failed) == (2, 0)
    for data in files.values():
        assert stored_path(data).read_bytes() == data


def test_the_cli_and_the_api_summary_say_how_many_files_a_sync_restored(threaded_upstream,
                                                                        api_client_for):
    files = {f"f{i}.bin": os.urandom(2000 + i) for i in range(3)}
    Remote.objects.create(name="cli", url=threaded_upstream.add_repo("repo", files))
    call_command("sync_remote", "cli", stdout=io.StringIO())
    os.unlink(stored_path(files["f1.bin"]))
    out = io.StringIO()

    call_command("sync_remote", "cli", stdout=out)

    assert "2 already present, 1 downloaded (2.00 kB; 1 restored" in out.getvalue()
    task = SyncTask.objects.filter(kind="sync").order_by("-created").first()
    shown = api_client_for("remote administrator").get(f"/api/tasks/{task.pk}/").json()
    assert shown["summary"]["restored"] == 1 and shown["summary"]["downloaded"] == 1
