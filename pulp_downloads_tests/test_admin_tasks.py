"""The task pages of the admin: titled by kind, remote linked, one list with a Kind column
and filter, a partial sync amber "Completed, N failed", and a progress answer carrying every
part of the page so that the page follows the task (also after a cancel) without a reload."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from pulp_downloads.admin.taskpage import SETTLE
from pulp_downloads.models import Remote, SyncTask

pytestmark = pytest.mark.django_db
TASKS = "/admin/pulp_downloads/synctask/"


@pytest.fixture
def remote():
    return Remote.objects.create(name="uxd-big", url="https://example.test/PULP_MANIFEST")


def partial_task(remote) -> SyncTask:
    now = timezone.now()
    return SyncTask.objects.create(
        remote=remote, state="completed", files_total=10, files_done=8, files_failed=2,
        bytes_total=2_870_000, bytes_done=1_520_000, started=now - timedelta(seconds=75),
        finished=now, error="2 of 10 file(s) failed to download",
        summary={"listed": 10, "downloaded": 8, "failed": 2, "bytes_downloaded": 1_357_417},
        failures=[{"relative_path": f"pool/{i}.rpm", "url": f"https://example.test/pool/{i}.rpm",
                   "error": "HTTP 404 Not Found"} for i in range(2)])


def progress(client, task) -> dict:
    answer = client.get(f"{TASKS}{task.pk}/progress/")
    assert answer.status_code == 200
    return answer.json()


def test_a_partial_sync_is_amber_completed_n_failed_everywhere(admin_client, remote):
    task = partial_task(remote)
    good = Remote.objects.create(name="good", url="https://example.test/g/PULP_MANIFEST")
    SyncTask.objects.create(remote=good, state="completed", files_total=3, files_done=3)
    amber = re.compile(r'class="sync-state sync-state-completed sync-state-partial" '
                       r'style="background:#d29922;[^"]*">Completed, 2 failed</span>')
    for url in (TASKS, f"{TASKS}{task.pk}/change/", "/admin/pulp_downloads/remote/",
                f"/admin/pulp_downloads/remote/{remote.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert amber.search(page), url
    remotes = admin_client.get("/admin/pulp_downloads/remote/").content.decode()
    assert remotes.count("sync-state-partial") == 1  # the full success stays green
    assert 'class="sync-state sync-state-completed" style="background:#1a7f37' in remotes
    assert progress(admin_client, task)["outcome"] == "Completed, 2 failed"
    assert progress(admin_client, task)["partial"] is True


def test_the_task_page_is_titled_by_kind_with_its_remote_a_link(admin_client, remote):
    task = SyncTask.objects.create(remote=remote)  # waiting
    page = admin_client.get(f"{TASKS}{task.pk}/change/").content.decode()
    link = f'<a href="/admin/pulp_downloads/remote/{remote.pk}/change/" class="task-remote">'
    assert f'<h1 id="task-title">Sync of {link}uxd-big</a>' in page
    assert "<title>Sync of uxd-big | pulp_downloads</title>" in page
    assert "(waiting)" not in page and "View task" not in page
    assert page.count(link) == 2  # the title and the "of" field
    repair = SyncTask.objects.create(kind="repair", state="completed")
    page = admin_client.get(f"{TASKS}{repair.pk}/change/").content.decode()
    assert '<h1 id="task-title">Repair of all remotes <span data-live="badge">' in page
    assert "Cancel" not in page  # not active


def test_one_tasks_list_with_a_kind_column_and_filter(admin_client, remote):
    sync = SyncTask.objects.create(remote=remote, state="completed")
    repair = SyncTask.objects.create(remote=remote, kind="repair", state="completed")
    page = admin_client.get(TASKS).content.decode()
    assert "<title>Select task to view | pulp_downloads</title>" in page
    assert '<td class="field-kind">Repair</td>' in page
    assert '<td class="field-kind">Sync</td>' in page
    assert f'href="/admin/pulp_downloads/remote/{remote.pk}/change/" class="task-remote"' in page
    repairs = admin_client.get(TASKS, {"kind__exact": "repair"}).content.decode()
    assert str(repair.pk) in repairs and str(sync.pk) not in repairs
    assert ">Tasks</a>" in admin_client.get("/admin/").content.decode()


def test_lists_show_short_dates_and_human_sizes(admin_client, remote):
    task = partial_task(remote)
    for url in (TASKS, "/admin/pulp_downloads/remote/"):
        page = admin_client.get(url).content.decode()
        assert not re.search(r"[ap]\.m\.", page), url  # no "Dec. 2, 2026, 6:05 p.m."
        day, time = timezone.localtime(task.finished).strftime("%Y-%m-%d %H:%M").split()
        assert (f'<span class="nowrap">{day}</span> <span class="nowrap">{time}</span></time>'
                in page), url
    assert "1.52 MB of 2.87 MB" in admin_client.get(TASKS).content.decode()
    detail = admin_client.get(f"{TASKS}{task.pk}/change/").content.decode()
    assert '<span class="size" title="1,357,417 bytes">1.36 MB</span>' in detail  # summary
    assert "1357417" not in detail


def test_progress_carries_every_part_through_the_states(admin_client, remote):
    task = SyncTask.objects.create(remote=remote)
    first = progress(admin_client, task)
    assert first["live"] is True and first["state"] == "waiting"
    assert ">Waiting</span>" in first["parts"]["badge"] and first["parts"]["started"] == "—"
    assert first["parts"]["summary"].strip() == "—"

    started = timezone.now()
    SyncTask.objects.filter(pk=task.pk).update(state="running", started=started,
                                               files_total=40, files_done=16,
                                               bytes_total=2_000_000, bytes_done=800_000)
    running = progress(admin_client, task)
    assert running["outcome"] == "Running" and ">Running</span>" in running["parts"]["badge"]
    assert running["files"] == "16 of 40 files" and running["bytes"] == "800 kB of 2.00 MB"
    assert timezone.localtime(started).strftime("%H:%M") in running["parts"]["started"]
    assert running["parts"]["finished"] == "—"

    SyncTask.objects.filter(pk=task.pk).update(
        state="completed", finished=timezone.now(), files_done=40, bytes_done=2_000_000,
        summary={"listed": 40, "downloaded": 40, "bytes_downloaded": 2_000_000})
    done = progress(admin_client, task)
    assert done["live"] is False and done["percent"] == 100 and done["eta"] == ""
    assert ">Completed</span>" in done["parts"]["badge"]
    assert "<time" in done["parts"]["finished"]
    assert '<table id="sync-summary">' in done["parts"]["summary"]
    assert "files listed" in done["parts"]["summary"] and "2.00 MB" in done["parts"]["summary"]


def test_a_canceled_task_is_followed_until_its_worker_wrote_the_summary(admin_client, remote):
    task = SyncTask.objects.create(remote=remote, state="running", started=timezone.now())
    page = admin_client.get(f"{TASKS}{task.pk}/change/").content.decode()
    assert 'id="cancel-sync"' in page and ">Cancel sync</button>" in page
    answer = admin_client.post(f"{TASKS}{task.pk}/cancel/", follow=True)
    assert "Canceled the sync of uxd-big." in answer.content.decode()
    canceled = progress(admin_client, task)
    assert canceled["state"] == "canceled" and canceled["active"] is False
    assert canceled["live"] is True  # the worker has yet to write the summary
    assert canceled["parts"]["summary"].strip() == "—"
    SyncTask.objects.filter(pk=task.pk).update(summary={"listed": 40, "downloaded": 5})
    settled = progress(admin_client, task)
    assert settled["live"] is False and '<table id="sync-summary">' in settled["parts"]["summary"]
    # A worker that never writes it: the page stops asking after a while.
    gone = SyncTask.objects.create(remote=Remote.objects.create(name="gone", url=remote.url),
                                   state="canceled", started=timezone.now() - 2 * SETTLE,
                                   finished=timezone.now() - SETTLE)
    assert progress(admin_client, gone)["live"] is False
    # A task canceled before it started has no summary to wait for.
    never = SyncTask.objects.create(remote=Remote.objects.create(name="n", url=remote.url),
                                    state="canceled", finished=timezone.now())
    assert progress(admin_client, never)["live"] is False


def test_failures_table_wraps_and_lists_each_failure(admin_client, remote):
    task = partial_task(remote)
    failures = progress(admin_client, task)["parts"]["failures"]
    assert '<table id="sync-failures" class="wrapping">' in failures
    assert failures.count("HTTP 404 Not Found") == 2 and "pool/1.rpm" in failures


def test_a_size_only_repair_shows_files_not_zero_bytes(admin_client):
    task = SyncTask.objects.create(kind="repair", state="running", started=timezone.now(),
                                   files_total=400, files_done=120)
    answer = progress(admin_client, task)
    assert answer["files"] == "120 of 400 files" and answer["bytes"] == ""
    page = admin_client.get(f"{TASKS}{task.pk}/change/").content.decode()
    assert "0 bytes of 0 bytes" not in page
    assert re.search(r'id="sync-bytes-sep" hidden', page)
    listing = admin_client.get(TASKS).content.decode()
    assert "120/400 files (30 %)" in listing and "0 bytes of 0 bytes" not in listing
