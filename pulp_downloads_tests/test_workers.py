"""Real worker processes: a queued sync runs on `manage.py db_worker`; concurrent syncs of
remotes sharing files store each Artifact once."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from pulp_downloads.models import Artifact, ContentUnit, Remote, SyncTask

from .upstream import held_body_fault, held_fault
from .waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
DB_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def test_sync_task_goes_from_waiting_to_completed_on_a_real_worker(
        settings, threaded_upstream, subprocess_env):
    settings.TASKS = DB_BACKEND
    content = {f"pool/{i}.bin": os.urandom(10_000) for i in range(8)}
    url = threaded_upstream.add_repo("repo", content)
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("op"))
    remote = client.post("/api/remotes/", {"name": "w", "url": url}, format="json").json()
    task_href = client.post(f"{remote['href']}sync/").json()["task"]
    assert client.get(task_href).json()["state"] == "waiting"
    assert not Artifact.objects.exists()

    worker = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"],
        cwd=ROOT, env=subprocess_env, capture_output=True, text=True, timeout=120,
    )
    assert worker.returncode == 0, worker.stderr[-2000:]
    task = client.get(task_href).json()
    assert task["state"] == "completed", task
    assert task["progress"]["files_done"] == 8 and task["summary"]["downloaded"] == 8
    assert Artifact.objects.count() == 8
    assert ContentUnit.objects.filter(artifact__isnull=True).count() == 0
    for artifact in Artifact.objects.all():
        with artifact.file.open("rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == artifact.sha256


def test_two_workers_syncing_shared_files_store_each_artifact_once(
        settings, threaded_upstream, subprocess_env):
    shared = {f"shared/{i}.bin": os.urandom(30_000) for i in range(30)}
    gate = threaded_upstream.gate()
    for name in ("one", "two"):
        own = {f"own/{name}-{i}.bin": os.urandom(5_000) for i in range(3)}
        url = threaded_upstream.add_repo(name, {**shared, **own})
        for path in shared:  # the shared files are held until both workers are asking
            threaded_upstream.faults[f"{name}/{path}"].append(held_fault(gate))
        Remote.objects.create(name=name, url=url, download_concurrency=10)
    procs = [
        subprocess.Popen([sys.executable, "manage.py", "sync_remote", name, "--progress", "none"],
                         cwd=ROOT, env=subprocess_env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for name in ("one", "two")
    ]
    try:
        wait_for(lambda: all(threaded_upstream.hits[f"{name}/{path}"] >= 1
                             for name in ("one", "two") for path in list(shared)[:5])
                 or any(proc.poll() is not None for proc in procs),
                 "both workers to ask for the first shared files")
    finally:
        gate.open()
    outputs = [proc.communicate(timeout=180) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err[-2000:]
        assert "IntegrityError" not in err
    assert Artifact.objects.count() == 36
    assert ContentUnit.objects.filter(artifact__isnull=True).count() == 0
    assert SyncTask.objects.filter(state="completed").count() == 2
    # Both workers really overlapped on the shared files.
    assert all(threaded_upstream.hits[f"{name}/{path}"] >= 1
               for name in ("one", "two") for path in list(shared)[:5])


def _artifact_files(media_root: str) -> set[str]:
    base = Path(media_root) / "artifact"
    return {str(p.relative_to(media_root)) for p in base.rglob("*") if p.is_file()}


def test_killed_sync_leaves_no_bad_artifact_and_the_next_sync_completes(
        settings, threaded_upstream, subprocess_env):
    import signal

    content = {f"f{i:02d}.bin": os.urandom(50_000) for i in range(40)}
    url = threaded_upstream.add_repo("repo", content)
    gate = threaded_upstream.gate()
    for path in sorted(content)[5:]:  # the first five come at once, the others half-way
        threaded_upstream.faults[f"repo/{path}"].append(held_body_fault(gate, 25_000))
    remote = Remote.objects.create(name="killme", url=url, download_concurrency=2)
    proc = subprocess.Popen([sys.executable, "manage.py", "sync_remote", "killme",
                             "--progress", "none"], cwd=ROOT, env=subprocess_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # killed with five files stored and two half-way through their bodies
        wait_for(lambda: Artifact.objects.count() == 5 and gate.held == 2,
                 "five files stored and two held")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    gate.open()
    stored = Artifact.objects.count()
    assert stored == 5, "killed in the middle of the sync"

    # No Artifact whose bytes disagree with its digests.
    for artifact in Artifact.objects.all():
        with artifact.file.open("rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == artifact.sha256
    assert SyncTask.objects.get().state == "running"

    from pulp_downloads.tasks import run_sync_now

    task = run_sync_now(remote)
    assert task.state == "completed", task.error
    assert Artifact.objects.count() == 40
    assert SyncTask.objects.filter(state="failed", error__contains="stopped").count() == 1
    rows = {a.file.name for a in Artifact.objects.all()}
    assert _artifact_files(settings.MEDIA_ROOT) == rows, "no orphan file under an Artifact path"
    for artifact in Artifact.objects.all():
        with artifact.file.open("rb") as fh:
            assert hashlib.sha256(fh.read()).hexdigest() == artifact.sha256


def test_progress_is_visible_through_the_api_while_the_sync_runs(threaded_upstream):
    import threading

    content = {f"f{i:02d}.bin": os.urandom(20_000) for i in range(30)}
    url = threaded_upstream.add_repo("repo", content)
    gate = threaded_upstream.gate()
    for path in sorted(content)[10:]:  # a third come at once, the rest when the test says
        threaded_upstream.faults[f"repo/{path}"].append(held_fault(gate))
    remote = Remote.objects.create(name="progress", url=url, download_concurrency=2)
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("watcher"))

    from pulp_downloads.tasks import run_sync_now

    def sync_in_thread():
        from django.db import connections

        try:
            run_sync_now(remote)
        finally:
            connections.close_all()

    def seen_through_the_api():
        listing = client.get("/api/tasks/", {"remote": remote.pk}).json()["results"]
        if listing:
            return (listing[0]["state"], listing[0]["progress"]["files_done"],
                    listing[0]["progress"]["files_total"])
        return None

    worker = threading.Thread(target=sync_in_thread)
    worker.start()
    try:
        wait_for(lambda: seen_through_the_api() == ("running", 10, 30),
                 "the API to show 10 of 30 files done while the sync runs")
    finally:
        gate.open()
        worker.join(60)
    assert seen_through_the_api() == ("completed", 30, 30)
    assert SyncTask.objects.get().state == "completed"


def test_status_counts_a_running_worker_until_it_stops(subprocess_env):
    import signal

    from pulp_downloads.models import Worker

    worker = subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval", "0.2"],
        cwd=ROOT, env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True)
    try:
        wait_for(Worker.objects.exists, "the worker to register")
        status = APIClient().get("/status/").json()
        assert status["workers"]["online"] == 1, status
        assert Worker.objects.get().name.endswith(f":{worker.pid}")
    finally:
        worker.send_signal(signal.SIGTERM)
        _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr[-2000:]
    assert APIClient().get("/status/").json()["workers"] == {"online": 0, "last_heartbeat": None}
