"""Artifact storage: content-addressed paths, atomic placement, idempotence on sha256."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage

from pulp_downloads.conf import app_settings
from pulp_downloads.models import Artifact
from pulp_downloads.storage import ArtifactError, ArtifactStore, artifact_path

pytestmark = pytest.mark.django_db(transaction=True)


def temp_file(tmp_path: Path, data: bytes, name: str = "upload.tmp") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def digests_of(data: bytes) -> dict[str, str]:
    return {name: hashlib.new(name, data).hexdigest() for name in app_settings().allowed_checksums}


def test_path_is_derived_from_sha256():
    sha = hashlib.sha256(b"x").hexdigest()
    assert artifact_path(sha) == f"artifact/{sha[:2]}/{sha[2:]}"
    with pytest.raises(ArtifactError):
        artifact_path("not-hex")


def test_from_validated_file_moves_file_into_storage(tmp_path):
    data = b"hello artifact\n" * 100
    src = temp_file(tmp_path, data)
    artifact = ArtifactStore().store_file(src, digests_of(data), len(data))
    assert not src.exists(), "the temporary file is moved, not copied"
    assert artifact.size == len(data)
    assert artifact.file.name == artifact_path(hashlib.sha256(data).hexdigest())
    with default_storage.open(artifact.file.name) as fh:
        assert fh.read() == data
    assert artifact.sha512 == hashlib.sha512(data).hexdigest()
    assert artifact.md5 is None, "only allowed algorithms are stored"


def test_from_validated_file_is_idempotent_on_sha256(tmp_path):
    data = b"same bytes"
    first = ArtifactStore().store_file(temp_file(tmp_path, data, "a"), digests_of(data))
    again = temp_file(tmp_path, data, "b")
    second = ArtifactStore().store_file(again, digests_of(data))
    assert first.pk == second.pk
    assert Artifact.objects.count() == 1
    assert not again.exists(), "the duplicate temporary file is removed"


def test_digests_are_computed_when_not_given(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 7)
    artifact = ArtifactStore().store_file(temp_file(tmp_path, data))
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert artifact.sha224 == hashlib.sha224(data).hexdigest()
    assert artifact.size == len(data)


def test_missing_allowed_digest_is_refused_and_file_kept(tmp_path):
    data = b"abc"
    src = temp_file(tmp_path, data)
    with pytest.raises(ArtifactError, match="sha512"):
        ArtifactStore().store_file(src, {"sha256": hashlib.sha256(data).hexdigest()}, 3)
    assert src.exists()
    assert Artifact.objects.count() == 0


def test_unknown_digest_algorithm_is_a_clear_error(tmp_path):
    src = temp_file(tmp_path, b"abc")
    with pytest.raises(ArtifactError, match="unknown digest"):
        ArtifactStore().store_file(src, {"crc32": "abcd"}, 3)


def test_extra_allowed_checksum_md5_is_stored_when_enabled(settings, tmp_path):
    settings.PULP_DOWNLOADS = dict(
        settings.PULP_DOWNLOADS, ALLOWED_CONTENT_CHECKSUMS=["md5", "sha256"]
    )
    data = b"md5 too"
    artifact = ArtifactStore().store_file(temp_file(tmp_path, data))
    assert artifact.md5 == hashlib.md5(data).hexdigest()
    assert artifact.sha512 is None


def test_settings_must_allow_sha256(settings):
    settings.PULP_DOWNLOADS = dict(settings.PULP_DOWNLOADS, ALLOWED_CONTENT_CHECKSUMS=["sha512"])
    with pytest.raises(ImproperlyConfigured, match="sha256"):
        app_settings()


def test_settings_refuse_unknown_checksum(settings):
    settings.PULP_DOWNLOADS = dict(
        settings.PULP_DOWNLOADS, ALLOWED_CONTENT_CHECKSUMS=["sha256", "whirlpool"]
    )
    with pytest.raises(ImproperlyConfigured, match="whirlpool"):
        app_settings()


def test_deleting_an_artifact_removes_its_file(tmp_path):
    data = b"to be deleted"
    artifact = ArtifactStore().store_file(temp_file(tmp_path, data))
    name = artifact.file.name
    assert default_storage.exists(name)
    artifact.delete()
    assert not default_storage.exists(name)


@pytest.mark.parametrize("use_syncfs", [True, False])
def test_content_in_memory_is_written_into_storage(settings, tmp_path, use_syncfs):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "FLUSH_WITH_SYNCFS": use_syncfs}
    contents = [f"small file {i}\n".encode() * (i + 1) for i in range(20)]
    from_disk = b"a larger file on disk\n" * 1000
    disk_file = temp_file(tmp_path, from_disk)
    items = [(data, digests_of(data), len(data)) for data in contents]
    items.append((disk_file, digests_of(from_disk), len(from_disk)))
    stored = ArtifactStore().store_validated(items, fsync_below=256 * 1024)
    assert sorted(stored) == sorted(hashlib.sha256(d).hexdigest() for d in [*contents, from_disk])
    for data in [*contents, from_disk]:
        artifact = Artifact.objects.get(sha256=hashlib.sha256(data).hexdigest())
        with artifact.file.open("rb") as fh:
            assert fh.read() == data
        assert artifact.sha512 == hashlib.sha512(data).hexdigest()
    assert not disk_file.exists()
    artifact_dirs = Path(default_storage.path("artifact"))
    assert not [p for p in artifact_dirs.rglob("*") if p.name.endswith(".partial")]


def test_content_in_memory_already_stored_is_not_written_again():
    data = b"stored once\n"
    ArtifactStore().store_validated([(data, digests_of(data), len(data))])
    artifact = Artifact.objects.get()
    before = os.stat(artifact.file.path).st_ino
    again = ArtifactStore().store_validated([(data, digests_of(data), len(data))] * 2)
    assert again == [artifact.sha256]
    assert Artifact.objects.count() == 1
    assert os.stat(artifact.file.path).st_ino == before, "the stored file was not replaced"


def test_flush_setting_must_be_a_boolean(settings):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "FLUSH_WITH_SYNCFS": "no"}
    with pytest.raises(ImproperlyConfigured, match="FLUSH_WITH_SYNCFS"):
        app_settings()


@pytest.mark.parametrize("use_syncfs", [True, False])
def test_flushing_a_missing_file_is_an_error_naming_it(tmp_path, use_syncfs):
    from pulp_downloads.storage.durability import flush_files

    present = temp_file(tmp_path, b"x")
    flush_files([present], use_syncfs=use_syncfs)
    with pytest.raises(FileNotFoundError) as excinfo:
        flush_files([present, tmp_path / "gone"], use_syncfs=use_syncfs)
    assert "gone" in str(excinfo.value)


def test_file_from_another_filesystem_is_copied_into_place(tmp_path):
    other = Path("/dev/shm")
    media = Path(default_storage.path(""))
    media.mkdir(parents=True, exist_ok=True)
    if not other.is_dir() or os.stat(other).st_dev == os.stat(media).st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than MEDIA_ROOT's")
    data = b"crossing filesystems\n" * 5000
    src = other / f"pulp-downloads-test-{os.getpid()}.tmp"
    src.write_bytes(data)
    try:
        artifact = ArtifactStore().store_file(src, digests_of(data), len(data))
        assert not src.exists(), "the temporary file is removed once copied"
    finally:
        src.unlink(missing_ok=True)
    with artifact.file.open("rb") as fh:
        assert fh.read() == data
    folder = Path(artifact.file.path).parent
    assert [p.name for p in folder.iterdir() if p.name.endswith(".partial")] == []
