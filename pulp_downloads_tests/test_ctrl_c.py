"""Ctrl-C on the commands people run in a terminal: a cancel, not a crash.

Real ``manage.py`` subprocesses get a real SIGINT while the upstream holds files at a gate,
so the sync is "running, some files stored, others in flight" for exactly as long as the test
needs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pulp_downloads.models import Artifact, ContentUnit, Remote, SyncTask
from pulp_downloads.tasks import run_sync_now

from .test_task_faults import ROOT, slow_repo
from .upstream import held_fault
from .waiting import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def manage(env, tmp_path: Path, name: str, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    """Start ``manage.py *args``; returns the process and its stdout and stderr files."""
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    process = subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                               stdout=open(out, "wb"), stderr=open(err, "wb"))
    return process, out, err


def interrupt(process: subprocess.Popen) -> tuple[int, float]:
    """Send SIGINT; returns the exit status and the seconds it took to exit."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        status = process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    return status, time.monotonic() - started


def stored_units(remote: Remote) -> int:
    return ContentUnit.objects.filter(remote=remote, artifact__isnull=False).count()


def test_ctrl_c_cancels_a_foreground_sync_and_it_resumes(
        threaded_upstream, subprocess_env, tmp_path):
    gate = threaded_upstream.gate()
    remote = Remote.objects.create(name="fg", url=slow_repo(threaded_upstream, gate),
                                   download_concurrency=2)
    process, out, err = manage(subprocess_env, tmp_path, "sync", "sync_remote", "fg",
                               "--progress", "lines")
    try:
        # Some files stored (and their units linked), others held upstream, in flight.
        wait_for(lambda: stored_units(remote) == 3 and gate.held >= 1,
                 what="three files stored and downloads held at the gate")
    finally:
        if process.poll() is not None:
            print(err.read_text())
    status, took = interrupt(process)
    print(f"sync_remote exited {took:.2f} s after SIGINT")
    stderr = err.read_text()
    assert status == 130, stderr
    assert "Traceback" not in stderr and "cannot schedule new futures" not in stderr, stderr
    assert stderr.strip() == "Canceled: 3 of 15 files stored; run it again to go on."
    task = SyncTask.objects.get(remote=remote)
    assert task.state == "canceled" and task.error == "Canceled by Ctrl-C."
    assert task.finished is not None
    assert Artifact.objects.count() == 3  # what was stored stays

    gate.open()
    again = subprocess.run([sys.executable, "manage.py", "sync_remote", "fg", "--progress",
                            "none"], cwd=ROOT, env=subprocess_env, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "already running" not in again.stderr
    assert "3 already present, 12 downloaded" in again.stdout
    assert stored_units(remote) == 15 and Artifact.objects.count() == 15
    assert SyncTask.objects.filter(remote=remote).latest("created").state == "completed"


def test_ctrl_c_on_enqueue_wait_stops_following_and_the_task_goes_on(
        threaded_upstream, subprocess_env, tmp_path):
    remote = Remote.objects.create(name="queued", url=threaded_upstream.add_repo(
        "queued", {"a.bin": b"a" * 100}))
    # No worker runs: the task waits, as it would behind a busy queue.
    process, out, err = manage(subprocess_env, tmp_path, "wait", "sync_remote", "queued",
                               "--enqueue", "--wait", "--progress", "none")
    wait_for(lambda: SyncTask.objects.filter(remote=remote).exists() or process.poll() is not None,
             what="the sync to be queued")
    task = SyncTask.objects.get(remote=remote)
    status, took = interrupt(process)
    print(f"sync_remote --enqueue --wait exited {took:.2f} s after SIGINT")
    stderr = err.read_text()
    assert status == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert "goes on" in stderr and f"/api/tasks/{task.pk}/" in stderr
    assert "manage.py sync_remote queued --cancel" in stderr
    assert f"manage.py task cancel {task.pk}" in stderr
    task.refresh_from_db()
    assert task.state == "waiting"  # following stopped; the task did not


def test_ctrl_c_on_repair_enqueue_wait_stops_following_and_the_repair_goes_on(
        subprocess_env, tmp_path):
    # No worker runs: the repair waits, as it would behind a busy queue.
    process, out, err = manage(subprocess_env, tmp_path, "repair", "repair", "--enqueue",
                               "--wait")
    wait_for(lambda: SyncTask.objects.filter(kind="repair").exists()
             or process.poll() is not None, what="the repair to be queued")
    task = SyncTask.objects.get(kind="repair")
    status, took = interrupt(process)
    print(f"repair --enqueue --wait exited {took:.2f} s after SIGINT")
    stderr = err.read_text()
    assert status == 130, stderr
    assert stderr.strip() == (f"Stopped following; the repair goes on on a worker: "
                              f"/api/tasks/{task.pk}/\n"
                              f"Cancel it with: manage.py task cancel {task.pk}")
    task.refresh_from_db()
    assert task.state == "waiting"  # following stopped; the repair did not


SECOND_CTRL_C = """
import os, signal, time
from pulp_downloads.management.interrupt import CtrlC

with CtrlC() as ctrl_c:
    os.kill(os.getpid(), signal.SIGINT)
    while not ctrl_c:  # the handler runs between bytecodes, right after the kill
        time.sleep(0.01)
    print("first: requested", flush=True)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(600)  # work that would never notice: the second Ctrl-C must not wait for it
print("not reached", flush=True)
"""


def test_a_second_ctrl_c_exits_at_once_and_the_first_only_asks():
    ran = subprocess.run([sys.executable, "-c", SECOND_CTRL_C], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 130
    assert ran.stdout == "first: requested\n"
    assert ran.stderr.strip() == "Interrupted again: exiting now."


def test_ctrl_c_cancels_a_foreground_repair_and_keeps_what_it_repaired(
        threaded_upstream, subprocess_env, tmp_path):
    content = {f"r{i}.bin": os.urandom(4_000 + i) for i in range(5)}
    remote = Remote.objects.create(name="rep", url=threaded_upstream.add_repo("rep", content))
    assert run_sync_now(remote).state == "completed"
    artifacts = list(Artifact.objects.all())
    for artifact in artifacts:
        os.unlink(artifact.file.path)
    gate = threaded_upstream.gate()
    for name in content:
        threaded_upstream.faults[f"rep/{name}"].append(held_fault(gate))
    gate.let_through(2)  # two files come back, the third is held: the repair is mid-way
    process, out, err = manage(subprocess_env, tmp_path, "repair", "repair")
    wait_for(lambda: sum(os.path.exists(a.file.path) for a in artifacts) == 2
             and gate.held == 1, what="two files repaired and the third held")
    status, took = interrupt(process)
    print(f"repair exited {took:.2f} s after SIGINT")
    stderr = err.read_text()
    assert status == 130, stderr
    assert "Traceback" not in stderr, stderr
    assert stderr.strip() == ("Canceled: 5 of 5 files checked, 2 repaired; run it again to "
                              "go on.")
    task = SyncTask.objects.get(kind="repair")
    assert task.state == "canceled" and task.error == "Canceled by Ctrl-C."
    assert sum(os.path.exists(a.file.path) for a in artifacts) == 2  # what was repaired stays

    gate.open()
    again = subprocess.run([sys.executable, "manage.py", "repair"], cwd=ROOT,
                           env=subprocess_env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert all(os.path.exists(a.file.path) for a in artifacts)
