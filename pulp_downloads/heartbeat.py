"""The heartbeat of running tasks, beaten by a thread of its own.

A running :class:`~pulp_downloads.models.SyncTask` whose heartbeat is older than the site's
heartbeat timeout counts as abandoned and is reaped. The heartbeat therefore does not depend
on what the task is doing: :class:`TaskHeartbeat` beats it from a daemon thread with its own
database connection, so a long step (a large manifest parsed on the event loop, planning,
recording a million ContentUnits, parsing a Metalink) cannot starve it.

On SQLite one connection writes at a time: while a step holds a long write transaction, no
other connection (the heartbeat thread's, or a reaper's) can write. Such a step calls
:func:`beat_within_transaction` before it commits, so the heartbeat committed with its work
is fresh when a reaper next gets to write.
"""
from __future__ import annotations

import logging
import threading
from datetime import timedelta
from types import TracebackType
from uuid import UUID

from django.db import DatabaseError, InterfaceError, connections
from django.utils import timezone

from .models import SyncTask

log = logging.getLogger(__name__)

#: Beats per heartbeat timeout: a task is reaped only after this many beats in a row failed.
BEATS_PER_TIMEOUT = 4

#: Tasks whose heartbeat a :class:`TaskHeartbeat` of this process is beating.
_beating: set[UUID] = set()
_beating_lock = threading.Lock()


def beat_interval(timeout: timedelta | None = None) -> float:
    """Seconds between beats: ``timeout`` (the site's heartbeat timeout when ``None``)
    divided by :data:`BEATS_PER_TIMEOUT`."""
    timeout = SyncTask.heartbeat_timeout() if timeout is None else timeout
    return timeout.total_seconds() / BEATS_PER_TIMEOUT


def beat(pk: UUID) -> bool:
    """Write the heartbeat of task ``pk`` now; returns whether it is still running."""
    return bool(SyncTask.objects.filter(pk=pk, state=SyncTask.State.RUNNING)
                .update(heartbeat=timezone.now()))


def beat_within_transaction() -> None:
    """Beat every task this process is running, on the calling thread's connection: call it
    at the end of a long write transaction, which commits the heartbeat with its work (see
    the module docstring). Does nothing when this process runs no task."""
    with _beating_lock:
        running = list(_beating)
    if running:
        SyncTask.objects.filter(pk__in=running, state=SyncTask.State.RUNNING).update(
            heartbeat=timezone.now())


class TaskHeartbeat:
    """Beats the heartbeat of running task ``pk`` every ``interval`` seconds (by default
    :func:`beat_interval`) from a daemon thread, from entering the ``with`` block to leaving
    it. A beat the database refuses is logged and tried again at the next interval; the
    task's state is never changed here (a canceled task simply stops being beaten).
    """

    def __init__(self, pk: UUID, interval: float | None = None) -> None:
        self.pk = pk
        self.interval = beat_interval() if interval is None else interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{pk}", daemon=True)

    def __enter__(self) -> "TaskHeartbeat":
        with _beating_lock:
            _beating.add(self.pk)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        with _beating_lock:
            _beating.discard(self.pk)
        self._stopped.set()
        # A beat waiting on a locked database may outlast this: it only ever writes to a
        # running task, and the thread closes its own connection when it ends.
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    beat(self.pk)
                except (DatabaseError, InterfaceError) as exc:
                    log.info("heartbeat of task %s not written (%s); trying again in %.1f s",
                             self.pk, exc, self.interval)
                    connections.close_all()  # this thread's: the next beat reconnects
        finally:
            connections.close_all()
