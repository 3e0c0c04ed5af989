"""A running task keeps its heartbeat through every step of a sync, however long the step.

A step is made long without waiting for it: the test holds the step until it releases it,
and meanwhile moves the clock of the app (``timezone.now``) forward by several heartbeat
timeouts, then runs the reaper.
"""
from __future__ import annotations

import queue
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from pulp_downloads import heartbeat
from pulp_downloads.models import ContentUnit, Remote, SyncTask
from pulp_downloads.sync import run as sync_run
from pulp_downloads.tasks import run_sync_now

pytestmark = pytest.mark.django_db(transaction=True)
TIMEOUT = 4  # seconds: a beat every second


@pytest.fixture
def short_heartbeat(settings):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "TASK_HEARTBEAT_TIMEOUT": TIMEOUT}


@pytest.fixture
def clock(monkeypatch):
    """The app's clock; ``clock.skip(seconds)`` moves it forward at once."""
    real_now = timezone.now

    class Clock:
        ahead = timedelta(0)

        def skip(self, seconds: float):
            self.ahead += timedelta(seconds=seconds)
            return timezone.now()

    clock = Clock()
    monkeypatch.setattr(timezone, "now", lambda: real_now() + clock.ahead)
    return clock


@pytest.fixture
def beats(monkeypatch):
    """When each beat of a heartbeat thread started (by the app's clock), as it is written."""
    written: queue.Queue = queue.Queue()
    real_beat = heartbeat.beat

    def beat(pk) -> bool:
        started = timezone.now()
        running = real_beat(pk)
        written.put(started)
        return running

    monkeypatch.setattr(heartbeat, "beat", beat)
    return written


class HeldStep:
    """Holds the step it wraps until :meth:`release`; :meth:`wait_entered` waits for it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.released = threading.Event()

    def hold(self) -> None:
        self.entered.set()
        self.released.wait(120)

    def wait_entered(self) -> None:
        assert self.entered.wait(60), "the sync never reached the held step"

    def release(self) -> None:
        self.released.set()


def in_thread(function, *args) -> tuple[threading.Thread, list]:
    """Start ``function(*args)`` on a thread of its own; the list receives its result."""
    result: list = []

    def target() -> None:
        try:
            result.append(function(*args))
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def wait_for_a_beat_since(beats: queue.Queue, moment) -> None:
    """Wait until a beat that started at or after ``moment`` was written (or give up, and
    let the test's assertions say what is wrong)."""
    try:
        while beats.get(timeout=10 * TIMEOUT) < moment:
            pass
    except queue.Empty:
        pass


def test_a_manifest_parsed_for_several_timeouts_keeps_the_heartbeat(
        short_heartbeat, clock, beats, threaded_upstream, monkeypatch):
    url = threaded_upstream.add_repo("repo", {f"f{i}.bin": bytes([i]) * 100 for i in range(3)})
    remote = Remote.objects.create(name="parsed", url=url)
    step = HeldStep()
    real_parse = sync_run.parse_manifest

    def parse_manifest(text):  # blocks the event loop, as parsing a huge manifest does
        step.hold()
        return real_parse(text)

    monkeypatch.setattr(sync_run, "parse_manifest", parse_manifest)
    syncing, result = in_thread(run_sync_now, remote)
    try:
        step.wait_entered()
        wait_for_a_beat_since(beats, clock.skip(3 * TIMEOUT))
        reaped = SyncTask.reap()
        running = SyncTask.objects.get(remote=remote)
    finally:
        step.release()
        syncing.join(60)
    assert reaped == 0 and running.state == "running"
    assert result[0].state == "completed", result[0].error
    assert result[0].summary["downloaded"] == 3


def test_units_recorded_for_several_timeouts_keep_the_heartbeat(
        short_heartbeat, clock, beats, threaded_upstream, monkeypatch):
    url = threaded_upstream.add_repo("repo", {f"f{i}.bin": bytes([i]) * 100 for i in range(3)})
    remote = Remote.objects.create(name="recorded", url=url, policy="on_demand")
    step = HeldStep()
    real_insert = ContentUnit.insert_new
    real_record = sync_run.record_units
    reaped_at_commit = []

    def insert_new(cls, remote_id, listed):  # within record_units' transaction
        step.hold()
        return real_insert(remote_id, listed)

    def record_units(*args):
        real_record(*args)
        reaped_at_commit.append(SyncTask.reap())  # the first write after the commit

    monkeypatch.setattr(ContentUnit, "insert_new", classmethod(insert_new))
    monkeypatch.setattr(sync_run, "record_units", record_units)
    syncing, result = in_thread(run_sync_now, remote)
    try:
        step.wait_entered()
        skipped = clock.skip(3 * TIMEOUT)
        if connection.vendor != "sqlite":  # SQLite lets no other connection write meanwhile
            wait_for_a_beat_since(beats, skipped)
        # The reaper runs while the step holds its transaction (on SQLite, it waits for the
        # commit, as a worker's reaper does).
        reaping, reaped_during = in_thread(SyncTask.reap)
    finally:
        step.release()
        syncing.join(60)
    reaping.join(60)
    assert reaped_during == [0] and reaped_at_commit == [0]
    assert result[0].state == "completed", result[0].error
    assert ContentUnit.objects.filter(remote=remote).count() == 3
