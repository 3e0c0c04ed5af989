"""Tasks end in a true state whatever happens: cancel, killed workers, database outages.

Real ``manage.py db_worker`` processes run the syncs; the upstream holds chosen files until
the test releases them, so a sync is "slow" for exactly as long as a test needs.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from pulp_downloads.models import Artifact, Remote, SyncTask
from pulp_downloads.tasks import enqueue_sync

from .upstream import held_fault
from .waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
DB_BACKEND = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def gate(threaded_upstream):
    """Held upstream requests wait on this; it opens when the test ends."""
    return threaded_upstream.gate()


def slow_repo(upstream, gate, free: int = 3, held: int = 12) -> str:
    """A repository whose first ``free`` files come at once and the others only when the gate
    opens; returns the manifest URL."""
    content = {f"f{i:02d}.bin": os.urandom(5_000 + i) for i in range(free + held)}
    url = upstream.add_repo("repo", content)
    for name in sorted(content)[free:]:
        upstream.faults[f"repo/{name}"].append(held_fault(gate))
    return url


def start_worker(env, log: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "db_worker", "--no-startup-delay", "--interval", "0.2",
         *args], cwd=ROOT, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)


def task_state(task: SyncTask) -> SyncTask:
    task.refresh_from_db()
    return task


def test_cancel_through_the_api_stops_a_slow_sync_on_a_worker(
        settings, threaded_upstream, gate, subprocess_env, api_client_for, tmp_path):
    settings.TASKS = DB_BACKEND
    remote = Remote.objects.create(name="slow", url=slow_repo(threaded_upstream, gate),
                                   download_concurrency=2)
    task = enqueue_sync(remote)
    worker = start_worker(subprocess_env, tmp_path / "worker.log", "--batch")
    try:
        wait_for(lambda: Artifact.objects.count() == 3 and task_state(task).files_done == 3,
                 what="the free files to be stored")
        operator = api_client_for("remote operator")
        started = time.monotonic()
        response = operator.post(f"/api/tasks/{task.pk}/cancel/")
        assert response.status_code == 200 and response.json()["state"] == "canceled"
        worker.wait(30)  # a --batch worker exits once the canceled sync has stopped
        stopped_after = time.monotonic() - started
    finally:
        if worker.poll() is None:
            worker.kill()
    print(f"sync stopped {stopped_after:.2f} s after the cancel")
    task.refresh_from_db()
    assert task.state == "canceled" and task.error.startswith("Canceled by user")
    assert Artifact.objects.count() == 3  # what was stored stays
    for artifact in Artifact.objects.all():
        with artifact.file.open("rb") as fh:
            assert len(fh.read()) == artifact.size
    working = Path(settings.MEDIA_ROOT) / ".working"
    leftovers = [p for p in working.rglob("*") if p.is_file()] if working.exists() else []
    assert leftovers == []  # nothing half-written stays
    # A canceled task cannot be canceled again; the remote can be synced again at once.
    assert operator.post(f"/api/tasks/{task.pk}/cancel/").status_code == 409
    enqueue_sync(remote)


def test_cancel_needs_the_permission(api_client_for, db):
    remote = Remote.objects.create(name="r", url="https://one.test/PULP_MANIFEST")
    task = SyncTask.objects.create(remote=remote)  # waiting
    assert api_client_for("remote viewer").post(f"/api/tasks/{task.pk}/cancel/").status_code == 403
    assert task_state(task).state == "waiting"
    assert api_client_for("remote operator").post(f"/api/tasks/{task.pk}/cancel/").status_code == 200
    assert task_state(task).state == "canceled"


def test_a_canceled_waiting_task_never_runs(settings, threaded_upstream, subprocess_env, tmp_path):
    settings.TASKS = DB_BACKEND
    url = threaded_upstream.add_repo("repo", {"a.bin": b"a" * 100})
    remote = Remote.objects.create(name="w", url=url)
    task = enqueue_sync(remote)
    out = io.StringIO()
    call_command("sync_remote", "w", "--cancel", stdout=out)
    assert "Canceled the sync of 'w'" in out.getvalue()
    worker = start_worker(subprocess_env, tmp_path / "worker.log", "--batch")
    assert worker.wait(60) == 0
    assert task_state(task).state == "canceled"
    assert threaded_upstream.requests == [] and not Artifact.objects.exists()
    with pytest.raises(CommandError, match="No sync of 'w' is waiting or running"):
        call_command("sync_remote", "w", "--cancel", stdout=io.StringIO())


def test_a_killed_worker_is_reaped_by_another_and_the_remote_syncs_again(
        settings, threaded_upstream, gate, subprocess_env, tmp_path):
    settings.TASKS = DB_BACKEND
    env = dict(subprocess_env, PULP_DOWNLOADS_TASK_HEARTBEAT_TIMEOUT="2")
    remote = Remote.objects.create(name="killed", url=slow_repo(threaded_upstream, gate),
                                   download_concurrency=2)
    task = enqueue_sync(remote)
    first = start_worker(env, tmp_path / "first.log", "--batch")
    try:
        wait_for(lambda: task_state(task).state == "running" and task.files_done >= 3,
                 what="the sync to run")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    assert task_state(task).state == "running"  # nobody said otherwise yet
    second = start_worker(env, tmp_path / "second.log")
    try:
        wait_for(lambda: task_state(task).state == "failed", timeout=30,
                 what="the new worker to reap the task")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    assert "worker running this sync stopped" in task.error
    again = enqueue_sync(remote)  # no "already active" error
    assert again.state == "waiting"


def test_the_admin_offers_cancel_on_an_active_task_and_no_delete(make_user, db):
    from django.test import Client

    remote = Remote.objects.create(name="r", url="https://one.test/PULP_MANIFEST")
    task = SyncTask.objects.create(remote=remote, state=SyncTask.State.RUNNING)
    client = Client()
    client.force_login(make_user("boss", is_superuser=True, is_staff=True))
    page = client.get(f"/admin/pulp_downloads/synctask/{task.pk}/change/")
    assert b'id="cancel-sync"' in page.content
    assert f"/admin/pulp_downloads/synctask/{task.pk}/delete/".encode() not in page.content
    response = client.post(f"/admin/pulp_downloads/synctask/{task.pk}/cancel/")
    assert response.status_code == 302
    assert task_state(task).state == "canceled"
    page = client.get(f"/admin/pulp_downloads/synctask/{task.pk}/change/")
    assert b'id="cancel-sync"' not in page.content
    assert f"/admin/pulp_downloads/synctask/{task.pk}/delete/".encode() in page.content


def test_the_queue_result_list_is_not_in_the_admin(make_user, db):
    from django.test import Client

    client = Client()
    client.force_login(make_user("boss", is_superuser=True, is_staff=True))
    index = client.get("/admin/")
    assert b"/admin/pulp_downloads/synctask/" in index.content
    assert b"/admin/django_tasks_db/" not in index.content


@pytest.mark.postgres  # SQLite has no server to lose
def test_a_worker_survives_a_database_outage_and_carries_on(
        settings, threaded_upstream, subprocess_env, tmp_path):
    settings.TASKS = DB_BACKEND
    name = connection.settings_dict["NAME"]
    log = tmp_path / "worker.log"
    worker = start_worker(subprocess_env, log)
    try:
        wait_for(lambda: b"Starting worker" in log.read_bytes(), what="the worker to start")
        # The outage: the test database takes no new connections and its others are cut
        # (except this test's own, opened before).
        mine = own_backend_pid()
        with maintenance_connection() as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> %s", [name, mine])
        try:
            wait_for(lambda: b"database unavailable" in log.read_bytes(), timeout=30,
                     what="the worker to notice the outage")
            assert worker.poll() is None, "the worker exited"
        finally:
            with maintenance_connection() as admin:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        url = threaded_upstream.add_repo("repo", {"a.bin": b"after the outage"})
        task = enqueue_sync(Remote.objects.create(name="after", url=url))
        wait_for(lambda: task_state(task).state == "completed", timeout=90,
                 what="the worker to run a sync after the outage")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    assert Artifact.objects.count() == 1


def maintenance_connection():
    """An autocommit connection to the server's ``postgres`` database (ALTER DATABASE cannot
    run from the database it changes)."""
    import psycopg

    params = connection.settings_dict
    return psycopg.connect(host=params["HOST"] or "127.0.0.1", port=params["PORT"] or 5432,
                           user=params["USER"], password=params["PASSWORD"] or None,
                           dbname="postgres", autocommit=True)


def own_backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_a_database_error_during_a_sync_fails_it_clearly_not_running(
        threaded_upstream, monkeypatch, settings):
    """A store step that meets a lost database connection for longer than its retry time
    ends the task 'failed' with a clear error (no traceback in it, not left 'running'); the
    files stored before stay usable."""
    from django.db import OperationalError

    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "DATABASE_RETRY_TIME": 0.2}

    from pulp_downloads.storage.batch import ArtifactBatch
    from pulp_downloads.tasks import run_sync_now

    def database_gone(batch):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ArtifactBatch, "commit", database_gone)
    url = threaded_upstream.add_repo("repo", {f"f{i}.bin": os.urandom(3000) for i in range(4)})
    task = run_sync_now(Remote.objects.create(name="outage", url=url))
    assert task.state == "failed" and task.finished is not None
    assert task.error.startswith("The database was unavailable during the sync")
    assert "Traceback" not in task.error
