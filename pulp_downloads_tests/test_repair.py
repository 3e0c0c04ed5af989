"""Repair: Artifacts whose files went missing or corrupt are found and fetched again from the
remotes listing them; what the upstream lost is reported as unrepairable."""
from __future__ import annotations

import io
import os

import pytest
from django.core.management import CommandError, call_command

from pulp_downloads.models import Artifact, Remote, SyncTask
from pulp_downloads.tasks import run_sync_now

from .upstream import sha256

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def damaged(threaded_upstream):
    """A synced remote of 4 files: ``lost`` deleted from storage, ``flipped`` corrupted in
    place (same size), ``gone`` deleted from storage and from the upstream, ``fine`` intact."""
    files = {name: os.urandom(20_000 + i) for i, name in
             enumerate(("lost.bin", "flipped.bin", "gone.bin", "fine.bin"))}
    url = threaded_upstream.add_repo("r", files)
    remote = Remote.objects.create(name="r", url=url)
    assert run_sync_now(remote).state == "completed"
    artifact = {name: Artifact.objects.get(sha256=sha256(data)) for name, data in files.items()}
    os.unlink(artifact["lost.bin"].file.path)
    with open(artifact["flipped.bin"].file.path, "r+b") as fh:
        fh.seek(100)
        fh.write(bytes(b ^ 0xFF for b in files["flipped.bin"][100:110]))
    os.unlink(artifact["gone.bin"].file.path)
    del threaded_upstream.files["r/gone.bin"]
    return remote, files, artifact


def _bytes(artifact: Artifact) -> bytes | None:
    try:
        with open(artifact.file.path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def test_repair_restores_missing_and_corrupt_files_and_reports_the_lost_one(damaged):
    remote, files, artifact = damaged
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 3 damaged file"):
        call_command("repair", "--verify-digests", stdout=out)
    task = SyncTask.objects.get(kind="repair")
    assert task.state == "completed" and task.remote is None
    summary = task.summary
    assert (summary["checked"], summary["missing"], summary["corrupt"], summary["repaired"],
            summary["unrepairable"]) == (4, 2, 1, 2, 1)
    assert [f["file"] for f in task.failures] == [artifact["gone.bin"].file.name]
    assert "404" in task.failures[0]["error"]
    for name in ("lost.bin", "flipped.bin", "fine.bin"):
        assert _bytes(artifact[name]) == files[name], name
    assert _bytes(artifact["gone.bin"]) is None
    assert "4 checked, 2 missing, 1 corrupt, 2 repaired, 1 unrepairable" in out.getvalue()


def test_without_verify_digests_only_presence_and_size_are_checked(damaged):
    remote, files, artifact = damaged
    task = None
    with pytest.raises(CommandError):
        call_command("repair", "--remote", "r", stdout=io.StringIO())
    task = SyncTask.objects.get(kind="repair")
    assert task.remote == remote
    assert (task.summary["missing"], task.summary["corrupt"], task.summary["repaired"]) == (
        2, 0, 1)  # the same-size corruption needs --verify-digests
    assert _bytes(artifact["lost.bin"]) == files["lost.bin"]


def test_repair_api_queues_a_task_with_the_permission(damaged, api_client_for):
    remote, files, artifact = damaged
    viewer = api_client_for("remote viewer")
    assert viewer.post("/api/repair/", {}, format="json").status_code == 403
    admin = api_client_for("remote administrator")
    unknown = admin.post("/api/repair/", {"remote": "nope"}, format="json")
    assert unknown.status_code == 400 and "remote" in unknown.json()
    answer = admin.post("/api/repair/", {"remote": "r", "verify_digests": True}, format="json")
    assert answer.status_code == 202
    task = admin.get(answer.json()["task"]).json()
    assert task["kind"] == "repair" and task["remote_name"] == "r"
    assert task["state"] == "completed" and task["summary"]["repaired"] == 2
    assert task["summary"]["unrepairable"] == 1
    assert _bytes(artifact["flipped.bin"]) == files["flipped.bin"]


def test_admin_actions_start_a_repair(damaged, admin_client):
    remote, files, artifact = damaged
    admin_client.post("/admin/pulp_downloads/remote/", {
        "action": "repair_selected", "_selected_action": [remote.pk]})
    task = SyncTask.objects.get(kind="repair")
    assert task.remote == remote and task.summary["repaired"] == 2  # digests verified
    assert _bytes(artifact["lost.bin"]) == files["lost.bin"]
    os.unlink(artifact["lost.bin"].file.path)
    admin_client.post("/admin/pulp_downloads/artifact/", {
        "action": "repair_selected", "_selected_action": [artifact["lost.bin"].pk]})
    assert SyncTask.objects.filter(kind="repair").count() == 2
    assert _bytes(artifact["lost.bin"]) == files["lost.bin"]


def test_a_resync_downloads_a_file_gone_from_storage_again(damaged):
    remote, files, artifact = damaged
    task = run_sync_now(remote)
    assert _bytes(artifact["lost.bin"]) == files["lost.bin"]
    assert task.summary["downloaded"] >= 1


def test_repair_enqueue_wait_follows_the_task_on_a_worker(damaged, subprocess_env, settings,
                                                          tmp_path):
    from .test_task_faults import DB_BACKEND, start_worker

    settings.TASKS = DB_BACKEND
    out = io.StringIO()
    worker = start_worker(subprocess_env, tmp_path / "worker.log")
    try:
        with pytest.raises(CommandError, match="1 of 3 damaged file"):
            call_command("repair", "--wait", "--verify-digests", stdout=out)  # --wait queues
    finally:
        worker.terminate()
        worker.wait(30)
    task = SyncTask.objects.get(kind="repair")
    assert task.worker != SyncTask.this_worker()  # it ran on the worker
    assert "4 checked, 2 missing, 1 corrupt, 2 repaired, 1 unrepairable" in out.getvalue()
    progress = [line for line in out.getvalue().splitlines() if line.startswith("progress:")]
    assert progress and progress[-1].startswith("progress: 4/4 files")
