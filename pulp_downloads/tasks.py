"""Running syncs and repairs as tasks of Django's Tasks framework (django-tasks), tracked by
SyncTask.

``enqueue_sync(remote)`` records a waiting :class:`SyncTask` and enqueues
:func:`sync_remote_task` on the default task backend (``django_tasks_db`` in production:
workers started with ``manage.py db_worker`` on any machine sharing the database pick it up).
``run_sync_now(remote)`` runs a sync in the calling process with the same bookkeeping.
``enqueue_repair`` and ``run_repair_now`` do the same for a repair of stored files.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db import IntegrityError, connections, transaction
from django.utils import timezone
from django_tasks import task

from .dbretry import DATABASE_UNAVAILABLE, close_broken_connections
from .heartbeat import TaskHeartbeat
from .models import Remote, SyncTask
from .models.fields import SecretUnreadable
from .sync import (
    PartialSyncError,
    ProgressCallback,
    SyncCanceled,
    SyncError,
    SyncProgress,
    sync_remote,
)
from .sync.repair import UnrepairableError, repair_artifacts

log = logging.getLogger(__name__)


class SyncAlreadyActive(Exception):
    """A sync (or repair) of this remote is already waiting or running."""

    def __init__(self, active: SyncTask | None) -> None:
        self.active = active
        what = f"A {active.kind} of {active.target}" if active else "A task of this remote"
        super().__init__(
            f"{what} is already {active.state if active else 'in progress'}"
            + (f" (task {active.pk})." if active else ".")
        )


def _create(remote: Remote | None, state: str, kind: str = SyncTask.Kind.SYNC,
            options: dict | None = None) -> SyncTask:
    SyncTask.fail_abandoned(remote)
    try:
        with transaction.atomic():
            task = SyncTask.objects.create(remote=remote, state=state, kind=kind,
                                           options=options or {})
            if state == SyncTask.State.RUNNING:
                task.started = task.heartbeat = task.created
                task.worker = SyncTask.this_worker()
                task.save(update_fields=["started", "heartbeat", "worker"])
            return task
    except IntegrityError:
        active = SyncTask.objects.filter(
            remote=remote, state__in=SyncTask.ACTIVE_STATES).first()
        raise SyncAlreadyActive(active) from None


def enqueue_repair(remote: Remote | None = None, *, verify_digests: bool = False,
                   artifacts: list[int] | None = None) -> SyncTask:
    """Queue a repair of ``remote``'s Artifacts (all when ``None``; only ``artifacts`` ids
    when given); raises :class:`SyncAlreadyActive` if a task of that remote is pending."""
    task = _create(remote, SyncTask.State.WAITING, SyncTask.Kind.REPAIR,
                   _repair_options(verify_digests, artifacts))
    result = repair_task.enqueue(str(task.pk))
    SyncTask.objects.filter(pk=task.pk).update(backend_task_id=str(result.id))
    task.refresh_from_db()
    return task


def run_repair_now(remote: Remote | None = None, *, verify_digests: bool = False,
                   artifacts: list[int] | None = None,
                   progress: ProgressCallback | None = None,
                   stop: Callable[[], bool] | None = None) -> SyncTask:
    """Repair in this process, recorded as a SyncTask of kind ``repair``; ``stop`` as for
    :func:`run_sync_now`."""
    task = _create(remote, SyncTask.State.RUNNING, SyncTask.Kind.REPAIR,
                   _repair_options(verify_digests, artifacts))
    _execute(task, progress, stop)
    task.refresh_from_db()
    return task


def _repair_options(verify_digests: bool, artifacts: list[int] | None) -> dict:
    options: dict = {"verify_digests": bool(verify_digests)}
    if artifacts:
        options["artifacts"] = sorted(int(pk) for pk in artifacts)
    return options


def enqueue_sync(remote: Remote) -> SyncTask:
    """Queue a sync of ``remote``; raises :class:`SyncAlreadyActive` if one is pending."""
    sync_task = _create(remote, SyncTask.State.WAITING)
    result = sync_remote_task.enqueue(str(sync_task.pk))
    SyncTask.objects.filter(pk=sync_task.pk).update(backend_task_id=str(result.id))
    sync_task.refresh_from_db()
    return sync_task


def run_sync_now(remote: Remote, progress: ProgressCallback | None = None,
                 stop: Callable[[], bool] | None = None) -> SyncTask:
    """Sync ``remote`` in this process, recorded as a SyncTask (returned when finished).

    ``stop`` is asked at each progress report (about twice a second, from the calling
    thread); once it returns true the task is canceled as :meth:`SyncTask.cancel` does
    (by "Ctrl-C"): downloads stop, what is stored stays, the task ends ``canceled``."""
    sync_task = _create(remote, SyncTask.State.RUNNING)
    _execute(sync_task, progress, stop)
    sync_task.refresh_from_db()
    return sync_task


@task()
def sync_remote_task(sync_task_id: str) -> dict:
    """The worker side: run the waiting SyncTask ``sync_task_id``."""
    return _claim_and_run(sync_task_id)


@task()
def repair_task(sync_task_id: str) -> dict:
    """The worker side: run the waiting repair ``sync_task_id``."""
    return _claim_and_run(sync_task_id)


def _claim_and_run(sync_task_id: str) -> dict:
    now = timezone.now()
    claimed = SyncTask.objects.filter(pk=sync_task_id, state=SyncTask.State.WAITING).update(
        state=SyncTask.State.RUNNING, started=now, heartbeat=now, worker=SyncTask.this_worker()
    )
    sync_task = SyncTask.objects.select_related("remote").get(pk=sync_task_id)
    if not claimed:
        log.warning("sync task %s is %s, not waiting: not run again", sync_task_id, sync_task.state)
        return {"state": sync_task.state}
    _execute(sync_task, None)
    sync_task.refresh_from_db()
    return {"state": sync_task.state, "summary": sync_task.summary}


def _execute(sync_task: SyncTask, progress: ProgressCallback | None,
             stop: Callable[[], bool] | None = None) -> None:
    unrecorded = 0  # reports in a row that the database did not take

    def report(state: SyncProgress) -> None:
        # The progress report records the counts (and beats too), and is how a cancel
        # reaches the running sync; TaskHeartbeat beats from its own thread whatever step the
        # task is in. While the database is unavailable, reports are skipped (the sync goes on; its
        # own database steps retry) and the next one tries again on a new connection.
        nonlocal unrecorded
        try:
            beating = SyncTask.objects.filter(
                pk=sync_task.pk, state=SyncTask.State.RUNNING).update(
                files_total=state.files_total, files_done=state.files_done,
                files_failed=state.files_failed,
                bytes_total=state.bytes_total, bytes_done=state.bytes_done,
                heartbeat=timezone.now(),
            )
            if beating and stop is not None and stop():
                # Counted, then canceled: it stops below as with any cancel.
                beating = 0 if sync_task.cancel(by="Ctrl-C") else beating
            current = None if beating else (SyncTask.objects.filter(pk=sync_task.pk)
                                             .values_list("state", flat=True).first())
        except DATABASE_UNAVAILABLE as exc:
            close_broken_connections()
            if not unrecorded:
                log.warning("task %s: progress not recorded, database unavailable (%s); the "
                            "sync goes on", sync_task.pk, str(exc).strip())
            unrecorded += 1
        else:
            if unrecorded:
                log.info("task %s: progress recorded again after %d missed report(s)",
                         sync_task.pk, unrecorded)
                unrecorded = 0
            if not beating:
                raise SyncCanceled(f"the task is {current or 'gone'}")
        if progress is not None:
            progress(state)

    fields: dict = {"finished": None}
    try:
        with TaskHeartbeat(sync_task.pk):
            summary = _work(sync_task, report)
    except SyncCanceled as exc:
        log.info("%s %s of %s stopped: %s", sync_task.kind, sync_task.pk, sync_task.target, exc)
        fields.update(state=SyncTask.State.CANCELED)
        if exc.summary is not None:
            fields.update(summary=_without_failures(exc.summary.as_dict()),
                          failures=exc.summary.failures)
    except UnrepairableError as exc:
        fields.update(state=SyncTask.State.COMPLETED, error=str(exc),
                      summary=_without_failures(exc.summary.as_dict()),
                      failures=exc.summary.failures)
    except PartialSyncError as exc:
        # The sync ran to its end: completed, with the failed files listed, unless nothing
        # at all could be downloaded.
        nothing = exc.summary.downloaded == 0
        fields.update(state=SyncTask.State.FAILED if nothing else SyncTask.State.COMPLETED,
                      error=str(exc), summary=_without_failures(exc.summary.as_dict()),
                      failures=exc.summary.failures)
    except SyncError as exc:
        fields.update(state=SyncTask.State.FAILED, error=str(exc))
        if exc.summary is not None:
            fields.update(summary=_without_failures(exc.summary.as_dict()),
                          failures=exc.summary.failures)
    except SecretUnreadable as exc:
        fields.update(state=SyncTask.State.FAILED, error=str(exc))
    except DATABASE_UNAVAILABLE as exc:
        log.warning("%s failed: database unavailable (%s)", sync_task, exc)
        fields.update(state=SyncTask.State.FAILED,
                      error=f"The database was unavailable during the sync: {exc}".strip())
    except Exception as exc:  # noqa: BLE001 - recorded for the operator, then logged
        log.exception("%s crashed", sync_task)
        fields.update(state=SyncTask.State.FAILED, error=f"Unexpected error: {type(exc).__name__}: {exc}")
    else:
        fields.update(state=SyncTask.State.COMPLETED, summary=_without_failures(summary.as_dict()))
    fields["finished"] = timezone.now()
    _record_end(sync_task.pk, fields)


def _work(task: SyncTask, report: ProgressCallback):
    """Run what the task is for; returns its summary (``as_dict()``)."""
    if task.kind == SyncTask.Kind.REPAIR:
        return repair_artifacts(task.remote, progress=report,
                                verify_digests=bool(task.options.get("verify_digests")),
                                only=task.options.get("artifacts"))
    return sync_remote(task.remote, progress=report)


#: How long the end of a sync is retried while the database does not answer.
END_RECORD_RETRY = (1, 2, 4, 8, 15, 30, 30, 30)


def _record_end(pk, fields: dict) -> None:
    """Write how the sync ended, retrying while the database is unavailable (a short outage
    must not leave the task ``running``; a long one leaves it to the reaper)."""
    for delay in (*END_RECORD_RETRY, None):
        try:
            ended = SyncTask.objects.filter(pk=pk, state=SyncTask.State.RUNNING)
            if not ended.update(**fields):
                # Canceled (or reaped) meanwhile: keep that state and error; record the work.
                kept = {k: v for k, v in fields.items() if k not in ("state", "error", "finished")}
                SyncTask.objects.filter(pk=pk).update(**kept)
            return
        except DATABASE_UNAVAILABLE as exc:
            if delay is None:
                raise
            log.warning("could not record the end of sync task %s (%s); retrying in %d s",
                        pk, exc, delay)
            connections.close_all()
            time.sleep(delay)


def _without_failures(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "failures"}
