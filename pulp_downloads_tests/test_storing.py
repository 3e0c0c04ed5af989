"""Storing small files: the store helper process, ArtifactBatch's steps, directory hints."""
from __future__ import annotations

import fcntl
import hashlib
import os
import struct
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from pulp_downloads.storage.directories import mark_top_directory, prepare_fanout_directory
from pulp_downloads.models import Artifact, PendingArtifactFile
from pulp_downloads.storage import ArtifactError, ArtifactStore
from pulp_downloads.storage.batch import ArtifactBatch
from pulp_downloads.storage.helper import StoreHelper, StoreHelperError

ALGORITHMS = ("sha224", "sha256", "sha384", "sha512")
FS_IOC_GETFLAGS = 0x80086601
FS_TOPDIR_FL = 0x00020000


def digests_of(data: bytes, algorithms=ALGORITHMS) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in algorithms}


def flags_of(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    try:
        return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]
    finally:
        os.close(fd)


# --- the store helper process ------------------------------------------------------------------
async def test_helper_writes_files_atomically_and_returns_their_digests(tmp_path):
    contents = [os.urandom(n) for n in (0, 1, 2047, 2048, 16_384, 65_536)]
    targets = [tmp_path / "store" / f"{i:02x}" / f"file{i}" for i in range(len(contents))]
    helper = await StoreHelper.start()
    try:
        digests = await helper.write(list(zip(targets, contents)), algorithms=ALGORITHMS,
                                     use_syncfs=True)
        again = await helper.write([(targets[0], b"second request")], algorithms=("sha256",),
                                   use_syncfs=False)
    finally:
        await helper.close()
    assert digests == [digests_of(data) for data in contents]
    assert again == [digests_of(b"second request", ("sha256",))]
    assert targets[0].read_bytes() == b"second request"
    for target, data in zip(targets[1:], contents[1:]):
        assert target.read_bytes() == data
        assert target.stat().st_mode & 0o777 == 0o600
    assert not [p for p in (tmp_path / "store").rglob("*.partial")]
    assert helper._process.returncode == 0


async def test_helper_reports_a_file_it_cannot_write_and_keeps_serving(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_bytes(b"")
    helper = await StoreHelper.start()
    try:
        with pytest.raises(StoreHelperError, match="could not store a file") as info:
            await helper.write([(blocker / "ab" / "file", b"data")], algorithms=("sha256",),
                               use_syncfs=True)
        assert str(blocker) in str(info.value)
        ok = await helper.write([(tmp_path / "fine", b"data")], algorithms=("sha256",),
                                use_syncfs=True)
    finally:
        await helper.close()
    assert ok == [digests_of(b"data", ("sha256",))]
    assert (tmp_path / "fine").read_bytes() == b"data"


async def test_a_dead_helper_fails_every_later_request(tmp_path):
    helper = await StoreHelper.start()
    helper._process.kill()
    helper._process.wait()
    for _ in range(2):
        with pytest.raises(StoreHelperError, match="gone"):
            await helper.write([(tmp_path / "f", os.urandom(300_000))], algorithms=("sha256",),
                               use_syncfs=True)
    await helper.close()
    assert not (tmp_path / "f").exists()


async def test_the_helper_exits_when_its_parent_closes_the_pipe():
    helper = await StoreHelper.start()
    await helper.close()
    assert helper._process.returncode == 0


# --- directory hints ---------------------------------------------------------------------------
def test_top_directory_mark_is_set_where_the_file_system_supports_it(tmp_path):
    directory = tmp_path / "artifact"
    directory.mkdir()
    try:
        flags_of(directory)
    except OSError:  # a file system without inode flags: the hint is a no-op
        assert mark_top_directory(directory) is False
        return
    assert mark_top_directory(directory) is True
    assert flags_of(directory) & FS_TOPDIR_FL
    assert mark_top_directory(directory) is True  # idempotent


def test_hints_never_fail(tmp_path):
    assert mark_top_directory(tmp_path / "missing") is False
    regular = tmp_path / "file"
    regular.write_bytes(b"")
    assert mark_top_directory(regular) is False
    created = prepare_fanout_directory(tmp_path / "a" / "b")
    assert created.is_dir()


@pytest.mark.django_db
def test_storing_marks_the_artifact_root(tmp_path):
    ArtifactStore().store_validated([(b"x", digests_of(b"x"), 1)])
    root = Path(default_storage.path("artifact"))
    try:
        flags = flags_of(root)
    except OSError:
        pytest.skip("this file system has no inode flags to mark a top directory with")
    assert flags & FS_TOPDIR_FL


# --- ArtifactBatch -----------------------------------------------------------------------------
@pytest.mark.django_db
def test_batch_steps_store_content_and_complete_its_digests():
    data = [os.urandom(5000) for _ in range(3)]
    batch = ArtifactBatch.begin(
        [(d, {"sha256": hashlib.sha256(d).hexdigest()}, len(d)) for d in data])
    assert PendingArtifactFile.objects.count() == 3
    assert len(batch.placements) == 3
    for sha256 in batch.placements:
        batch.place(sha256)
    assert batch.placements == []
    stored = batch.commit()
    assert sorted(stored) == sorted(hashlib.sha256(d).hexdigest() for d in data)
    assert PendingArtifactFile.objects.count() == 0
    for d in data:
        artifact = Artifact.objects.get(sha256=hashlib.sha256(d).hexdigest())
        assert artifact.digests == digests_of(d)
        assert Path(artifact.file.path).read_bytes() == d


@pytest.mark.django_db
def test_batch_files_written_by_the_caller_are_recorded(tmp_path):
    data = b"written elsewhere"
    sha = hashlib.sha256(data).hexdigest()
    batch = ArtifactBatch.begin([(data, {"sha256": sha}, len(data))])
    [(written_sha, path, content)] = batch.contents_to_write()
    assert (written_sha, content) == (sha, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with pytest.raises(ArtifactError, match="has sha256"):
        batch.written(sha, {"sha256": "0" * 64})
    batch.written(sha, digests_of(data))
    assert batch.contents_to_write() == [] and batch.placements == []
    batch.commit()
    assert Artifact.objects.get().digests == digests_of(data)


@pytest.mark.django_db
def test_a_batch_is_not_committed_before_its_files_are_placed():
    data = b"not placed"
    batch = ArtifactBatch.begin([(data, digests_of(data), len(data))])
    with pytest.raises(ArtifactError, match="not placed"):
        batch.commit()
    assert not Artifact.objects.exists()
    assert PendingArtifactFile.objects.count() == 1  # left for cleanup_orphans


@pytest.mark.django_db
def test_files_on_disk_still_need_every_digest(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"on disk")
    with pytest.raises(ArtifactError, match="missing digest"):
        ArtifactBatch.begin([(path, {"sha256": hashlib.sha256(b"on disk").hexdigest()}, 7)])


@pytest.mark.django_db
def test_bulk_statements_stay_out_of_the_debug_query_log(settings):
    from django.db import connection

    settings.DEBUG = True
    seen = []

    def spy(execute, sql, params, many, context):
        seen.append(sql.split(" ", 3)[:3])
        return execute(sql, params, many, context)

    data = [os.urandom(3000) for _ in range(30)]
    connection.queries_log.clear()
    with connection.execute_wrapper(spy):
        batch = ArtifactBatch.begin(
            [(d, {"sha256": hashlib.sha256(d).hexdigest()}, len(d)) for d in data])
        batch.place_all()
        batch.commit()
    assert Artifact.objects.filter(sha256__in=[hashlib.sha256(d).hexdigest() for d in data]
                                   ).count() == 30
    logged = " ".join(q["sql"] for q in connection.queries)
    assert "INSERT" not in logged and "DELETE" not in logged  # not kept in the log...
    assert logged  # ...which still records the other statements
    assert ["INSERT", "INTO", f'"{Artifact._meta.db_table}"'] in seen  # wrappers see them


def test_missing_subdirectories_are_created_and_existing_ones_kept(tmp_path):
    from pulp_downloads.storage.directories import create_subdirectories

    (tmp_path / "01").mkdir()
    (tmp_path / "01" / "kept").write_bytes(b"x")
    assert create_subdirectories(tmp_path, ["00", "01", "02"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00", "01", "02"]
    assert (tmp_path / "01" / "kept").read_bytes() == b"x"
    assert create_subdirectories(tmp_path / "missing" / "deeper", ["00"]) == 0  # never raises
