"""``manage.py task``: list, show and cancel tasks; ``--json`` is the API's representation."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from pulp_downloads.models import Remote, SyncTask

from .test_commands import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def tasks():
    """A partial sync (2 of 40 failed), a failed one, a waiting one, and a size-only
    repair of every remote."""
    now = timezone.now()
    sample = Remote.objects.create(name="sample", url="https://example.test/PULP_MANIFEST")
    other = Remote.objects.create(name="other", url="https://other.test/PULP_MANIFEST")
    partial = SyncTask.objects.create(
        remote=sample, state="completed", started=now, finished=now, files_total=40,
        files_done=38, files_failed=2, bytes_total=9_100_000, bytes_done=3_400_000,
        error="2 of 40 file(s) failed to download",
        summary={"listed": 40, "downloaded": 38, "failed": 2},
        failures=[{"relative_path": f"f{i}.bin", "url": f"https://example.test/f{i}.bin",
                   "error": "HTTP 404 Not Found"} for i in range(2)])
    failed = SyncTask.objects.create(remote=other, state="failed", started=now, finished=now,
                                     error="PULP_MANIFEST: HTTP 404 Not Found")
    waiting = SyncTask.objects.create(remote=sample)
    repair = SyncTask.objects.create(kind="repair", state="completed", started=now,
                                     finished=now, files_total=5, files_done=5,
                                     options={"verify_digests": False},
                                     summary={"checked": 5, "missing": 0})
    return {"partial": partial, "failed": failed, "waiting": waiting, "repair": repair}


def test_task_list_shows_outcomes_and_sizes_for_people(tasks):
    lines = run("task", "list").splitlines()
    assert lines[0].split() == ["ID", "KIND", "TARGET", "STATE", "CREATED", "PROGRESS"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert len(rows) == 4
    partial = rows[str(tasks["partial"].pk)]
    assert "Completed, 2 failed" in partial
    assert partial.endswith("38 of 40 files stored, 2 failed, 3.40 MB of 9.10 MB")
    assert rows[str(tasks["repair"].pk)].endswith("5 of 5 files checked")  # no "0 bytes"
    assert "all remotes" in rows[str(tasks["repair"].pk)]
    waiting = rows[str(tasks["waiting"].pk)]
    assert waiting.split()[3] == "Waiting" and waiting.endswith("  -")  # no progress yet


def test_task_list_filters(tasks):
    def ids(*args: str) -> set[str]:
        return {line.split()[0] for line in run("task", "list", *args).splitlines()[1:]}

    assert ids("--remote", "sample") == {str(tasks["partial"].pk), str(tasks["waiting"].pk)}
    assert ids("--state", "failed") == {str(tasks["failed"].pk)}
    assert ids("--kind", "repair") == {str(tasks["repair"].pk)}
    assert ids("--remote", "sample", "--state", "waiting") == {str(tasks["waiting"].pk)}
    assert len(ids("--limit", "2")) == 2
    assert run("task", "list", "--state", "canceled").strip() == "No tasks."
    with pytest.raises(CommandError, match="--remote: no remote named 'nope'"):
        run("task", "list", "--remote", "nope")
    with pytest.raises(CommandError, match="invalid choice: 'done'"):
        run("task", "list", "--state", "done")


def test_task_json_is_what_the_api_shows(tasks, settings, api_client_for):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "BASE_URL": "http://testserver"}
    api = api_client_for("remote viewer")
    for task in tasks.values():
        answer = api.get(f"/api/tasks/{task.pk}/")
        assert answer.status_code == 200
        assert json.loads(run("task", "show", str(task.pk), "--json")) == answer.json()
    listed = api.get("/api/tasks/?remote_name=sample").json()["results"]
    assert json.loads(run("task", "list", "--remote", "sample", "--json")) == listed


def test_task_show_for_people(tasks):
    shown = run("task", "show", str(tasks["partial"].pk))
    fields = dict(line.split(None, 1) for line in shown.splitlines()
                  if line and not line.startswith(" ") and not line.startswith("failed"))
    assert fields["state"] == "Completed, 2 failed"
    assert fields["target"] == "remote sample"
    assert fields["progress"] == "38 of 40 files stored, 2 failed, 3.40 MB of 9.10 MB"
    assert fields["href"] == f"/api/tasks/{tasks['partial'].pk}/"
    assert "failed files (2):\n  f0.bin: HTTP 404 Not Found\n  f1.bin: HTTP 404" in shown
    assert "failed: " not in run("task", "show", str(tasks["repair"].pk))
    # The first characters of an id name the task when no other id starts with them.
    prefix = str(tasks["failed"].pk)[:8]
    assert f"id        {tasks['failed'].pk}" in run("task", "show", prefix)


def test_task_show_of_an_unknown_id_exits_non_zero(subprocess_env):
    missing = "00000000-0000-4000-8000-000000000000"
    ran = subprocess.run([sys.executable, "manage.py", "task", "show", missing], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=subprocess_env)
    assert ran.returncode == 1
    assert f"No task with the id '{missing}'" in ran.stderr and "Traceback" not in ran.stderr
    with pytest.raises(CommandError, match="'zz' is not a task id"):
        run("task", "cancel", "zz")


def test_task_cancel_does_what_the_api_cancel_does(tasks):
    waiting = tasks["waiting"]
    out = run("task", "cancel", str(waiting.pk))
    assert out.startswith(f"Canceled the sync {waiting.pk} of remote sample")
    waiting.refresh_from_db()
    assert waiting.state == "canceled" and waiting.error == "Canceled by manage.py task cancel."
    with pytest.raises(CommandError, match="is already canceled before it started: only a "
                                           "waiting or running task can be canceled"):
        run("task", "cancel", str(waiting.pk))
    with pytest.raises(CommandError, match=r"already completed, 2 failed \(38 of 40"):
        run("task", "cancel", str(tasks["partial"].pk))
    running = SyncTask.objects.create(remote=Remote.objects.get(name="other"), state="running",
                                      started=timezone.now())
    run("task", "cancel", str(running.pk)[:13])
    running.refresh_from_db()
    assert running.state == "canceled" and running.finished is not None
