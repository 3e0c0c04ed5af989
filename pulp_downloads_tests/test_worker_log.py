"""The worker's log says how each sync and repair really ended, with the id the API shows:
completed, completed with failed files, failed with its error, canceled with how far it got;
never django-tasks' "state=SUCCESSFUL" with an id of its own."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pulp_downloads.models import Artifact, Remote
from pulp_downloads.tasks import enqueue_repair, enqueue_sync

from .test_task_faults import DB_BACKEND, ROOT, slow_repo, start_worker, task_state
from .upstream import status_fault
from .waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def worker_env(settings, subprocess_env) -> dict[str, str]:
    settings.TASKS = DB_BACKEND
    return dict(subprocess_env, PULP_DOWNLOADS_LOG_LEVEL="INFO")


def lines_about(log: str, task) -> list[str]:
    return [line for line in log.splitlines() if str(task.pk) in line]


def test_each_task_ends_with_its_real_state_and_its_api_id(threaded_upstream, worker_env):
    from .other_tasks import add

    good = Remote.objects.create(name="good", url=threaded_upstream.add_repo(
        "good", {"a.bin": os.urandom(2000), "b.bin": os.urandom(3000)}))
    half = Remote.objects.create(name="half", max_retries=0, url=threaded_upstream.add_repo(
        "half", {"ok.bin": os.urandom(1000), "gone.bin": os.urandom(1000)}))
    threaded_upstream.faults["half/gone.bin"].append(status_fault(404))
    broken = Remote.objects.create(name="broken", max_retries=0,
                                   url=threaded_upstream.add_repo("broken", {}))
    threaded_upstream.faults["broken/PULP_MANIFEST"].append(status_fault(404))
    tasks = {name: enqueue_sync(remote) for name, remote in
             (("good", good), ("half", half), ("broken", broken))}
    other = add.enqueue(2, 3)
    ran = subprocess.run([sys.executable, "manage.py", "db_worker", "--batch",
                          "--no-startup-delay"], cwd=ROOT, env=worker_env, timeout=300,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = ran.stdout
    assert ran.returncode == 0, log[-3000:]
    print(log)

    good_lines = lines_about(log, tasks["good"])
    assert re.search(rf"INFO pulp_downloads.worker: sync {tasks['good'].pk} of remote good: "
                     "started$", good_lines[0]), good_lines
    assert good_lines[-1].endswith(f"sync {tasks['good'].pk} of remote good: completed "
                                   "(2 of 2 files stored, 5.00 kB of 5.00 kB)"), good_lines
    half_end = lines_about(log, tasks["half"])[-1]
    assert " WARNING pulp_downloads.worker: " in half_end
    assert half_end.endswith(f"sync {tasks['half'].pk} of remote half: completed, 1 failed "
                             "(1 of 2 files stored, 1.00 kB of 2.00 kB)"), half_end
    broken_end = lines_about(log, tasks["broken"])[-1]
    assert " ERROR pulp_downloads.worker: " in broken_end
    assert f"sync {tasks['broken'].pk} of remote broken: failed: " in broken_end
    assert "404" in broken_end and task_state(tasks["broken"]).error in broken_end
    # django-tasks' lines are gone for syncs and repairs, and kept for other tasks.
    theirs = [line for line in log.splitlines() if line.startswith("Task id=")]
    assert theirs == [f"Task id={other.id} path=pulp_downloads_tests.other_tasks.add "
                      f"state={state}" for state in ("RUNNING", "SUCCESSFUL")], theirs
    for task in tasks.values():
        assert task_state(task).backend_task_id not in log


def test_a_repair_and_a_canceled_sync_say_how_far_they_got(threaded_upstream, worker_env,
                                                           tmp_path):
    gate = threaded_upstream.gate()
    remote = Remote.objects.create(name="slow", url=slow_repo(threaded_upstream, gate),
                                   download_concurrency=2)
    task = enqueue_sync(remote)
    worker = start_worker(worker_env, tmp_path / "worker.log")
    try:
        wait_for(lambda: task_state(task).files_done == 3, what="the free files stored")
        assert task.cancel(by="test")
        wait_for(lambda: "canceled (" in (tmp_path / "worker.log").read_text(),
                 what="the end of the canceled sync in the log")
        gate.open()
        repair = enqueue_repair(remote)
        wait_for(lambda: f"repair {repair.pk}" in (tmp_path / "worker.log").read_text()
                 and "checked" in (tmp_path / "worker.log").read_text(),
                 what="the end of the repair in the log")
    finally:
        worker.terminate()
        worker.wait(30)
    log = (tmp_path / "worker.log").read_text()
    print(log)
    assert f"sync {task.pk} of remote slow: canceled (3 of 15 files stored, 15.0 kB of " \
        in lines_about(log, task)[-1], log
    assert lines_about(log, repair)[-1].endswith(
        f"repair {repair.pk} of remote slow: completed (3 of 3 files checked)"), log
    assert Artifact.objects.count() == 3
    assert "state=SUCCESSFUL" not in log
