"""``manage.py db_worker``: django_tasks_db's worker, made robust for long-running service.

On top of the upstream worker (same options), it

- reaps abandoned sync tasks when it starts and then every third of the heartbeat timeout
  (``PULP_DOWNLOADS["TASK_HEARTBEAT_TIMEOUT"]``): running tasks whose worker stopped are
  marked failed, so their remotes can be synced again;
- records its own heartbeat at the same pace (the ``Worker`` rows ``/status/`` counts), and
  removes it when it stops;
- survives the database going away: instead of exiting, it logs the error, waits (1 s,
  doubling up to 30 s) and carries on once the database answers again;
- logs how each sync and repair really ended, with the id the API and the admin show
  (``sync 6f1c... of remote sample: completed, 2 failed (38 of 40 files stored, ...)``,
  ``...: canceled (12 of 40 files stored)``, ``...: failed: <error>``), instead of
  django-tasks' ``Task id=<its own id> ... state=SUCCESSFUL``, which it writes for every
  task whose function returned, failed and canceled syncs included. Other tasks keep
  django-tasks' lines.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator

from django.core.management.base import CommandError
from django.db import DatabaseError, InterfaceError, connections
from django_tasks import TaskResultStatus
from django_tasks import signals as task_signals
from django_tasks_db.management.commands import db_worker as upstream

from pulp_downloads.management.output import task_end, task_title
from pulp_downloads.models import SyncTask, Worker
from pulp_downloads.tasks import repair_task, sync_remote_task

log = logging.getLogger("pulp_downloads.worker")

#: Errors that mean "the database is not answering": retried, never fatal to a worker.
DATABASE_UNAVAILABLE = (DatabaseError, InterfaceError)
MAX_BACKOFF = 30.0


class Reaper(threading.Thread):
    """Records this worker's heartbeat and marks abandoned running sync tasks failed, now
    and every ``interval`` seconds."""

    def __init__(self, interval: float, worker_name: str) -> None:
        super().__init__(name="sync-task-reaper", daemon=True)
        self.interval = interval
        self.worker_name = worker_name
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                Worker.beat(self.worker_name)
                Worker.forget_stale(SyncTask.heartbeat_timeout() * 10)
                reaped = SyncTask.reap()
                if reaped:
                    log.warning("marked %d abandoned sync task(s) failed", reaped)
            except DATABASE_UNAVAILABLE as exc:
                log.warning("could not reap abandoned sync tasks: database unavailable (%s)",
                            exc)
            finally:
                connections.close_all()  # this thread's connections only
            self.stopped.wait(self.interval)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)
        try:
            Worker.objects.filter(name=self.worker_name).delete()
        except DATABASE_UNAVAILABLE:
            pass  # its heartbeat ages instead
        finally:
            connections.close_all()


class SupervisedWorker(upstream.Worker):
    """The upstream worker loop, restarted with backoff when the database fails."""

    def run(self) -> None:
        delay = 1.0
        while self.running:
            try:
                super().run()
                return  # batch mode done, max tasks reached, or asked to stop
            except DATABASE_UNAVAILABLE as exc:
                if not self.running:
                    return
                log.warning("database unavailable (%s: %s); worker %s retries in %.0f s",
                            type(exc).__name__, str(exc).strip(), self.worker_id, delay)
                connections.close_all()
                self._pause(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    def _pause(self, seconds: float) -> None:
        """Sleep, waking early when a signal asked the worker to stop."""
        deadline = time.monotonic() + seconds
        while self.running and time.monotonic() < deadline:
            time.sleep(0.2)


#: The tasks whose start and end this worker logs itself.
OWN_TASKS = frozenset({sync_remote_task.module_path, repair_task.module_path})
#: The level of the end line, by the task's state (partial completions: a warning).
END_LEVELS = {SyncTask.State.COMPLETED: logging.INFO, SyncTask.State.CANCELED: logging.INFO,
              SyncTask.State.FAILED: logging.ERROR}


def _sync_task(task_result) -> SyncTask | None:
    """The SyncTask a sync or repair task result runs (``None``: gone, or not one of ours)."""
    if task_result.task.module_path not in OWN_TASKS or not task_result.args:
        return None
    return SyncTask.objects.select_related("remote").filter(pk=task_result.args[0]).first()


def log_task_started(sender, task_result, **kwargs) -> None:
    """``sync <id> of remote <name>: started``; other tasks: django-tasks' line."""
    if task_result.task.module_path not in OWN_TASKS:
        task_signals.log_task_started(sender=sender, task_result=task_result, **kwargs)
        return
    task = _sync_task(task_result)
    if task is not None:
        log.info("%s: started", task_title(task))


def log_task_finished(sender, task_result, **kwargs) -> None:
    """How a sync or repair run here ended, as the API shows it; other tasks: django-tasks'
    line. A task that was not run (canceled while it waited) was reported by the task."""
    if task_result.task.module_path not in OWN_TASKS:
        task_signals.log_task_finished(sender=sender, task_result=task_result, **kwargs)
        return
    task = _sync_task(task_result)
    crashed = task_result.status == TaskResultStatus.FAILED
    if task is None:
        log.warning("task %s no longer exists (deleted with its remote?): not run",
                    task_result.args[0] if task_result.args else "?")
        return
    if crashed:  # sent from the worker's except block: the error is at hand
        error = sys.exc_info()[1]
        log.error("%s: the worker's task raised %s; the task is %s", task_title(task),
                  type(error).__name__, task.state, exc_info=isinstance(error, Exception))
    elif task.worker == SyncTask.this_worker():
        level = logging.WARNING if task.is_partial else END_LEVELS.get(task.state, logging.INFO)
        log.log(level, "%s: %s", task_title(task), task_end(task))


@contextlib.contextmanager
def own_task_logs() -> Iterator[None]:
    """While active, :func:`log_task_started` and :func:`log_task_finished` replace
    django-tasks' receivers of the task signals."""
    swaps = ((task_signals.task_started, task_signals.log_task_started, log_task_started),
             (task_signals.task_finished, task_signals.log_task_finished, log_task_finished))
    for signal, theirs, ours in swaps:
        signal.disconnect(theirs)
        signal.connect(ours)
    try:
        yield
    finally:
        for signal, theirs, ours in swaps:
            signal.disconnect(ours)
            signal.connect(theirs)


class Command(upstream.Command):
    help = upstream.Command.help + (" Reaps abandoned sync tasks and survives database "
                                    "outages.")

    def handle(self, *, verbosity: int, queue_name: str, interval: float, batch: bool,
               backend_name: str, startup_delay: bool, reload: bool, max_tasks: int | None,
               worker_id: str, exclude_queues: str, **options) -> None:
        self.configure_logging(verbosity)
        if reload:
            log.warning("--reload is not supported by this worker; running without it")
        queue_names = queue_name.split(",")
        excluded = exclude_queues.split(",") if exclude_queues else []
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name=*")
        worker = SupervisedWorker(
            queue_names=queue_names, interval=interval, batch=batch,
            backend_name=backend_name, startup_delay=startup_delay, max_tasks=max_tasks,
            worker_id=worker_id, excluded_queue_names=excluded,
        )
        reaper = Reaper(max(1.0, SyncTask.heartbeat_timeout().total_seconds() / 3),
                        SyncTask.this_worker())
        worker.configure_signals()  # before the first heartbeat: from then on, Ctrl-C is graceful
        reaper.start()
        try:
            with own_task_logs():
                worker.run()
        finally:
            reaper.stop()
