"""Artifacts in object storage: syncs and the content app against a real S3 server (rclone)."""
from __future__ import annotations

import hashlib
import os
from datetime import timedelta

import aiohttp
import pytest
from asgiref.sync import sync_to_async

from pulp_downloads.models import Artifact, ContentUnit, Remote

from .content_app import get, remote_with_units, wait_for_artifact
from .upstream import free_port, sha256

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("close_thread_connections")]


def uploads(client, bucket: str) -> list:
    """The bucket's incomplete multipart uploads (rclone answers NoSuchUpload for none)."""
    from botocore.exceptions import ClientError

    try:
        return client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
            raise
        return []


def objects(client, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, by key."""
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return found


async def test_a_sync_stores_each_file_once_in_the_bucket(upstream, s3_storage, settings):
    from pulp_downloads.storage.batch import ObjectStore
    from pulp_downloads.sync import async_sync_remote

    client, bucket = s3_storage
    content = {f"small/{i}.bin": os.urandom(3000 + i) for i in range(5)}
    content["medium.bin"] = os.urandom(300 * 1024)  # through a temporary file
    content["large.bin"] = os.urandom(12 * 1024 * 1024)  # a multipart upload
    content["copy.bin"] = content["small/0.bin"]
    saved = []
    real_put = ObjectStore.put

    def counted_put(self, name, source):
        saved.append(name)
        return real_put(self, name, source)

    ObjectStore.put = counted_put
    try:
        url = upstream.add_repo("repo", content)
        first = await sync_to_async(Remote.objects.create)(name="first", url=url)
        summary = await async_sync_remote(first)
        assert summary.downloaded == 7 and summary.failed == 0
        # A second remote listing the same files uploads nothing again.
        second = await sync_to_async(Remote.objects.create)(name="second", url=url)
        await async_sync_remote(second)
    finally:
        ObjectStore.put = real_put
    stored = objects(client, bucket)
    distinct = {sha256(data): data for data in content.values()}
    assert len(stored) == len(distinct) == 7 and len(saved) == 7
    async for artifact in Artifact.objects.all():
        assert stored[artifact.file.name] == distinct[artifact.sha256]
        assert artifact.sha512 == hashlib.sha512(distinct[artifact.sha256]).hexdigest()
    assert not await ContentUnit.objects.filter(artifact__isnull=True).aexists()
    assert not (settings_media := os.path.join(settings.MEDIA_ROOT, "artifact")) or \
        not os.path.exists(settings_media), "files were written to the local media root"
    assert uploads(client, bucket) == []


async def synced_remote(upstream, files: dict[str, bytes]) -> Remote:
    from pulp_downloads.sync import async_sync_remote

    remote = await sync_to_async(Remote.objects.create)(
        name="stored", url=upstream.add_repo("repo", files))
    await async_sync_remote(remote)
    return remote


async def test_stored_files_redirect_to_a_presigned_url(upstream, s3_storage, asgi_server):
    data = os.urandom(200_000)
    remote = await synced_remote(upstream, {"a.bin": data})
    base = f"{asgi_server}/content/{remote.name}/a.bin"
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(base, allow_redirects=False) as response:
            assert response.status == 302
            location = response.headers["Location"]
            assert "Signature=" in location and "/artifact/" in location  # presigned
            assert response.headers["ETag"] == f'"{sha256(data)}"'
        async with session.get(base) as response:  # followed to the object store
            assert response.status == 200 and await response.read() == data
        async with session.get(base, headers={"Range": "bytes=10-19"}) as response:
            # The object store answers the range (rclone says 200 where S3 says 206).
            assert response.status in (200, 206) and await response.read() == data[10:20]
        async with session.head(base) as response:  # answered from the Artifact
            assert response.status == 200
            assert response.headers["Content-Length"] == str(len(data))
            assert response.headers["ETag"] == f'"{sha256(data)}"'


async def test_stored_files_stream_through_the_app_without_redirects(
        upstream, s3_storage, asgi_server, settings):
    settings.PULP_DOWNLOADS = dict(settings.PULP_DOWNLOADS, REDIRECT_TO_OBJECT_STORAGE=False)
    data = os.urandom(200_000)
    remote = await synced_remote(upstream, {"a.bin": data})
    base = f"{asgi_server}/content/{remote.name}/a.bin"
    status, headers, body = await get(base, allow_redirects=False)
    assert status == 200 and body == data and headers["ETag"] == f'"{sha256(data)}"'
    status, headers, body = await get(base, headers={"Range": "bytes=-100"})
    assert status == 206 and body == data[-100:]
    status, _, body = await get(base, headers={"If-None-Match": f'"{sha256(data)}"'})
    assert status == 304 and body == b""
    async with aiohttp.ClientSession() as session:
        async with session.head(base) as response:
            assert response.status == 200
            assert response.headers["Content-Length"] == str(len(data))
            assert response.headers["ETag"] == f'"{sha256(data)}"'


async def test_on_demand_files_are_saved_to_the_bucket(upstream, s3_storage, asgi_server):
    client, bucket = s3_storage
    data = os.urandom(500_000)
    url = upstream.add_repo("repo", {"a.bin": data})
    remote = await remote_with_units(url, "on_demand", {"a.bin": data})
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == data
    artifact = await wait_for_artifact(sha256(data))
    assert objects(client, bucket) == {artifact.file.name: data}
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == data  # now through the redirect
    assert upstream.hits["repo/a.bin"] == 1


async def test_cleanup_aborts_multipart_uploads_left_by_a_killed_process(s3_storage, settings):
    from pulp_downloads.storage import ArtifactStore

    client, bucket = s3_storage
    key = "artifact/ab/" + "c" * 62
    upload = client.create_multipart_upload(Bucket=bucket, Key=key)
    client.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1,
                       Body=os.urandom(5 * 1024 * 1024))
    assert len(uploads(client, bucket)) == 1
    store = await sync_to_async(ArtifactStore)()
    await sync_to_async(store.cleanup_orphans)(timedelta(hours=1))
    assert len(uploads(client, bucket)) == 1, \
        "an upload younger than the clean-up age was aborted"
    await sync_to_async(store.cleanup_orphans)(timedelta(0))
    assert uploads(client, bucket) == []
    assert objects(client, bucket) == {}


def s3_env(base: dict, s3_server, bucket: str) -> dict:
    """A subprocess environment whose default storage is ``bucket`` of the test S3 server."""
    return dict(base, PULP_DOWNLOADS_STORAGE="s3", AWS_STORAGE_BUCKET_NAME=bucket,
                AWS_ACCESS_KEY_ID=s3_server["key"], AWS_SECRET_ACCESS_KEY=s3_server["secret"],
                AWS_S3_ENDPOINT_URL=s3_server["endpoint"], AWS_S3_REGION_NAME="us-east-1",
                AWS_S3_ADDRESSING_STYLE="path")


def test_a_worker_killed_mid_upload_leaves_nothing_once_the_next_sync_ran(
        threaded_upstream, s3_server, s3_storage, subprocess_env, settings, tmp_path):
    from pulp_downloads.sync import sync_remote
    from pulp_downloads.tasks import enqueue_sync

    from .test_task_faults import DB_BACKEND, start_worker
    from .waiting import wait_for

    settings.TASKS = DB_BACKEND
    client, bucket = s3_storage
    content = {f"big{i}.bin": os.urandom(32 * 1024 * 1024) for i in range(6)}
    remote = Remote.objects.create(name="killed", url=threaded_upstream.add_repo("repo", content))
    enqueue_sync(remote)
    worker = start_worker(s3_env(subprocess_env, s3_server, bucket), tmp_path / "worker.log")
    try:
        wait_for(lambda: uploads(client, bucket), what="an upload to start")
    finally:
        worker.kill()
        worker.wait(30)
    # The next sync's clean-up aborts what the killed worker left (ORPHAN_CLEANUP_AGE=0 here),
    # then the sync stores every file.
    settings.PULP_DOWNLOADS = dict(settings.PULP_DOWNLOADS, ORPHAN_CLEANUP_AGE=0)
    summary = sync_remote(Remote.objects.get(pk=remote.pk))
    assert summary.failed == 0 and summary.listed == 6
    assert uploads(client, bucket) == []
    stored = objects(client, bucket)
    assert sorted(stored) == sorted(a.file.name for a in Artifact.objects.all())
    assert {sha256(data) for data in stored.values()} == {sha256(d) for d in content.values()}
    assert not ContentUnit.objects.filter(remote=remote, artifact__isnull=True).exists()


async def test_an_unreachable_bucket_fails_the_sync_with_a_clear_error(
        upstream, s3_storage, settings):
    from pulp_downloads.sync import SyncError, async_sync_remote

    options = settings.STORAGES["default"]["OPTIONS"]
    port = free_port()
    settings.STORAGES = {**settings.STORAGES, "default": {
        **settings.STORAGES["default"],
        "OPTIONS": {**options, "endpoint_url": f"http://127.0.0.1:{port}"}}}
    remote = await sync_to_async(Remote.objects.create)(
        name="nowhere", url=upstream.add_repo("repo", {"a.bin": os.urandom(100_000)}))
    with pytest.raises(SyncError, match="could not store the downloaded files: the storage "
                                        "refused artifact/") as info:
        await async_sync_remote(remote)
    assert options["secret_key"] not in str(info.value)
    assert not await Artifact.objects.aexists()


@pytest.mark.postgres  # what many machines share: one PostgreSQL, one bucket
def test_two_workers_share_one_database_and_one_bucket(
        threaded_upstream, s3_server, s3_storage, subprocess_env, settings, tmp_path):
    from pulp_downloads.models import SyncTask
    from pulp_downloads.tasks import SyncAlreadyActive, enqueue_sync

    from .test_task_faults import DB_BACKEND, start_worker
    from .waiting import wait_for

    settings.TASKS = DB_BACKEND
    client, bucket = s3_storage
    shared = {f"pool/{i:03d}.bin": os.urandom(4000 + i) for i in range(300)}
    shared.update({f"pool/mid{i}.bin": os.urandom(300_000 + i) for i in range(6)})
    shared["pool/large.bin"] = os.urandom(10 * 1024 * 1024)
    first = Remote.objects.create(name="first", url=threaded_upstream.add_repo(
        "a", {**shared, "only-a.bin": os.urandom(5000)}))
    second = Remote.objects.create(name="second", url=threaded_upstream.add_repo(
        "b", {**shared, "only-b.bin": os.urandom(6000)}))
    env = s3_env(subprocess_env, s3_server, bucket)
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [start_worker(env, log) for log in logs]
    try:
        wait_for(lambda: all(b"Starting worker" in log.read_bytes() for log in logs),
                 what="both workers to start")
        tasks = [enqueue_sync(first), enqueue_sync(second)]
        with pytest.raises(SyncAlreadyActive):  # one active sync per remote, whatever the workers
            enqueue_sync(first)
        def finished(task_list):
            states = [SyncTask.objects.get(pk=t.pk).state for t in task_list]
            return all(state in ("completed", "failed") for state in states)

        wait_for(lambda: finished(tasks), timeout=120, what="both syncs to finish")
        tasks.append(enqueue_sync(first))  # the same remote again, once the first is done
        wait_for(lambda: finished(tasks), timeout=60, what="the second sync of 'first'")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
    states = {SyncTask.objects.get(pk=t.pk).state for t in tasks}
    assert states == {"completed"}, [SyncTask.objects.get(pk=t.pk).error for t in tasks]
    assert SyncTask.objects.get(pk=tasks[-1].pk).summary["downloaded"] == 0
    ran_on = {SyncTask.objects.get(pk=t.pk).worker for t in tasks[:2]}
    distinct = {sha256(data) for data in [*shared.values()]} | {
        u.sha256 for u in ContentUnit.objects.filter(relative_path__startswith="only-")}
    assert Artifact.objects.count() == len(distinct) == 309
    stored = objects(client, bucket)
    assert sorted(stored) == sorted(a.file.name for a in Artifact.objects.all())
    assert {sha256(data) for data in stored.values()} == distinct
    assert not ContentUnit.objects.filter(artifact__isnull=True).exists()
    assert uploads(client, bucket) == []
    text = " ".join(log.read_text(errors="replace") for log in logs)
    assert "IntegrityError" not in text and "deadlock" not in text.lower()
    assert len(ran_on) == 2, "both syncs ran on one worker: nothing was shared"


async def test_without_redirects_only_the_range_asked_for_is_read_from_the_bucket(
        upstream, s3_storage, asgi_server, settings):
    settings.PULP_DOWNLOADS = dict(settings.PULP_DOWNLOADS, REDIRECT_TO_OBJECT_STORAGE=False)
    client, bucket = s3_storage
    data = os.urandom(3 * 1024 * 1024 + 7)
    remote = await synced_remote(upstream, {"a.bin": data})
    base = f"{asgi_server}/content/{remote.name}/a.bin"
    status, headers, body = await get(base, headers={"Range": "bytes=1048576-1048675"})
    assert status == 206 and body == data[1048576:1048676]
    assert headers["Content-Range"] == f"bytes 1048576-1048675/{len(data)}"
    status, _, body = await get(base)
    assert status == 200 and body == data
    # A key the bucket does not hold reads as missing (the view then answers 503 under
    # immediate, or fetches from upstream under on_demand).
    from django.core.files.storage import default_storage

    from pulp_downloads.storage.objects import ObjectStore

    store = await sync_to_async(ObjectStore.of)(default_storage)
    assert await sync_to_async(store.get)("artifact/00/" + "0" * 62, 0, 10) is None


async def test_streamed_remotes_serve_with_object_storage_configured(
        upstream, s3_storage, asgi_server):
    client, bucket = s3_storage
    data = os.urandom(400_000)
    url = upstream.add_repo("repo", {"a.bin": data})
    remote = await remote_with_units(url, "streamed", {"a.bin": data})
    status, _, body = await get(f"{asgi_server}/content/{remote.name}/a.bin")
    assert status == 200 and body == data
    assert objects(client, bucket) == {} and not await Artifact.objects.aexists()


async def test_repair_puts_back_deleted_and_overwritten_objects(upstream, s3_storage):
    from pulp_downloads.sync.repair import async_repair_artifacts

    client, bucket = s3_storage
    files = {"a.bin": os.urandom(40_000), "b.bin": os.urandom(50_000),
             "c.bin": os.urandom(60_000)}
    await synced_remote(upstream, files)
    names = {name: (await Artifact.objects.aget(sha256=sha256(data))).file.name
             for name, data in files.items()}
    client.delete_object(Bucket=bucket, Key=names["a.bin"])
    client.put_object(Bucket=bucket, Key=names["b.bin"], Body=os.urandom(50_000))  # same size
    summary = await async_repair_artifacts(verify_digests=True)
    assert (summary.checked, summary.missing, summary.corrupt, summary.repaired,
            summary.unrepairable) == (3, 1, 1, 2, 0)
    stored = objects(client, bucket)
    for name, data in files.items():
        assert stored[names[name]] == data, name


@pytest.mark.parametrize("head_up_to", [1000, 0], ids=["one-head-each", "listing"])
async def test_a_resync_fetches_again_the_objects_missing_from_the_bucket(
        upstream, s3_storage, monkeypatch, head_up_to):
    from pulp_downloads.storage import objects as object_store
    from pulp_downloads.sync import async_sync_remote

    monkeypatch.setattr(object_store, "HEAD_UP_TO", head_up_to)  # 0: found by listing
    client, bucket = s3_storage
    files = {f"f{i}.bin": os.urandom(3000 + i * 60_000) for i in range(6)}
    files["copy.bin"] = files["f0.bin"]
    remote = await synced_remote(upstream, files)
    keys = sorted(objects(client, bucket))
    assert len(keys) == 6
    for key in keys[1:]:
        client.delete_object(Bucket=bucket, Key=key)
    client.put_object(Bucket=bucket, Key=keys[0], Body=b"short")  # not the Artifact's size
    assert objects(client, bucket) == {keys[0]: b"short"}

    summary = await async_sync_remote(remote)

    assert (summary.already_present, summary.downloaded, summary.restored) == (0, 6, 6)
    stored = objects(client, bucket)
    assert sorted(stored) == keys
    async for artifact in Artifact.objects.all():
        data = stored[artifact.file.name]
        assert len(data) == artifact.size and hashlib.sha256(data).hexdigest() == artifact.sha256
    summary = await async_sync_remote(remote)
    assert (summary.already_present, summary.downloaded, summary.restored) == (7, 0, 0)


async def test_an_object_uploaded_with_another_size_is_refused_and_deleted(upstream,
                                                                            s3_storage):
    from pulp_downloads.storage.objects import ObjectStore
    from pulp_downloads.sync import async_sync_remote
    from pulp_downloads.sync.summary import PartialSyncError

    client, bucket = s3_storage
    files = {"big.bin": os.urandom(300_000), "small.bin": os.urandom(3000)}
    victim = f"artifact/{sha256(files['big.bin'])[:2]}/{sha256(files['big.bin'])[2:]}"
    real_put = ObjectStore.put

    def losing_put(self, name, source):  # an upload that loses the end of one file
        if name == victim:
            source = source.read_bytes()[:-1000]
        return real_put(self, name, source)

    ObjectStore.put = losing_put
    try:
        remote = await sync_to_async(Remote.objects.create)(
            name="r", url=upstream.add_repo("repo", files))
        with pytest.raises(PartialSyncError) as partial:
            await async_sync_remote(remote)
    finally:
        ObjectStore.put = real_put
    summary = partial.value.summary
    assert (summary.downloaded, summary.failed) == (1, 1)
    error = summary.failures[0]["error"]
    assert victim in error and "299000 bytes" in error and "300000 bytes" in error
    assert not await Artifact.objects.filter(sha256=sha256(files["big.bin"])).aexists()
    assert victim not in objects(client, bucket)
    summary = await async_sync_remote(remote)  # the next sync stores it
    assert (summary.downloaded, summary.failed) == (1, 0)
    assert objects(client, bucket)[victim] == files["big.bin"]
