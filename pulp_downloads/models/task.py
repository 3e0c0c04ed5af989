"""SyncTask: one sync of a Remote, as operators see it (state, progress, errors, summary)."""
from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from django.db import models
from django.db.models import Q
from django.utils import timezone


def process_exists(pid: int) -> bool:
    """Whether a process ``pid`` runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SyncTask(models.Model):
    """A sync of a Remote (or a repair of stored files), queued on the task framework or run
    in-process.

    ``kind`` says which: ``sync``, or ``repair`` (of one remote's Artifacts, or of all when
    ``remote`` is empty; ``options`` holds ``verify_digests`` and, for a repair of chosen
    Artifacts, their ``artifacts`` ids).

    At most one task per remote is ``waiting`` or ``running`` (a database constraint), so two
    syncs of the same remote never run at once. A thread of the process running a task beats
    its heartbeat whatever step the task is in (:mod:`pulp_downloads.heartbeat`); a task
    whose heartbeat is older than the site's heartbeat timeout (or whose process is gone from
    this host) is abandoned: workers mark it failed (:meth:`reap`), and so does the next
    request to sync its remote. :meth:`cancel` ends an active task as
    ``canceled``; the process running it notices at its next progress report and stops.
    """

    class State(models.TextChoices):
        WAITING = "waiting", "Waiting"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELED = "canceled", "Canceled"

    class Kind(models.TextChoices):
        SYNC = "sync", "Sync"
        REPAIR = "repair", "Repair"

    ACTIVE_STATES = (State.WAITING, State.RUNNING)
    #: The error of a task whose worker stopped.
    WORKER_STOPPED = ("The worker running this sync stopped (killed or lost): no heartbeat "
                      "for {age:.0f} s.")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SYNC,
                            db_index=True)
    remote = models.ForeignKey("Remote", on_delete=models.CASCADE, related_name="sync_tasks",
                               null=True, blank=True,
                               help_text="Empty for a repair of every remote's Artifacts.")
    options = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING,
                             db_index=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    heartbeat = models.DateTimeField(null=True, blank=True)
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    files_failed = models.PositiveIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    bytes_done = models.BigIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    summary = models.JSONField(default=dict, blank=True)
    failures = models.JSONField(default=list, blank=True)
    #: ``hostname:pid`` of the process running the sync.
    worker = models.CharField(max_length=255, blank=True, default="")
    #: The id of the django-tasks result that runs this sync, when it was enqueued.
    backend_task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-created"]
        verbose_name = "task"  # a sync or a repair (``kind``)
        verbose_name_plural = "tasks"
        permissions = [("cancel_synctask", "Can cancel sync task")]
        constraints = [
            models.UniqueConstraint(
                fields=["remote"],
                condition=Q(state__in=["waiting", "running"]),
                name="one_active_sync_per_remote",
            ),
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(state__in=["waiting", "running"], remote__isnull=True),
                name="one_active_task_of_all_remotes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.target} ({self.state})"

    @property
    def target(self) -> str:
        """What the task works on, for people: the remote's name, or "all remotes"."""
        if self.remote_id is None:
            return "chosen artifacts" if self.options.get("artifacts") else "all remotes"
        return str(self.remote)

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def is_partial(self) -> bool:
        """Completed, but some files failed: shown amber, never as a plain success."""
        return self.state == self.State.COMPLETED and self.files_failed > 0

    @property
    def outcome(self) -> str:
        """The state for people, wherever one is shown: ``Completed, 2 failed`` for a partial
        task, the state's label otherwise (``Running``, ``Canceled`` ...)."""
        if self.is_partial:
            return f"Completed, {self.files_failed} failed"
        return str(self.get_state_display())

    @classmethod
    def count_by_state(cls) -> dict[str, int]:
        """How many tasks are in each state (every state, 0 included), in one query."""
        counts = dict(cls.objects.values_list("state").annotate(n=models.Count("pk"))
                      .values_list("state", "n"))
        return {state: counts.get(state, 0) for state in cls.State.values}

    @staticmethod
    def heartbeat_timeout() -> timedelta:
        """How old a running task's heartbeat may get before the task counts as abandoned."""
        from pulp_downloads.conf import app_settings

        return app_settings().task_heartbeat_timeout

    @classmethod
    def fail_abandoned(cls, remote) -> int:
        """Mark running tasks of ``remote`` as failed when their worker is gone: its process
        no longer exists on this host, or its heartbeat is older than the timeout."""
        timeout = cls.heartbeat_timeout()
        cutoff = timezone.now() - timeout
        running = cls.objects.filter(remote=remote, state=cls.State.RUNNING)
        dead = [task.pk for task in running if task._process_is_gone()]
        stale = [task.pk for task in running if task._last_sign() < cutoff]
        if not dead and not stale:
            return 0
        # The heartbeat is checked again as the update writes: it may have been beaten since
        # it was read (on SQLite, committed by the transaction this update waited for).
        still_stale = Q(pk__in=stale) & (Q(heartbeat__lt=cutoff) | Q(heartbeat__isnull=True))
        return cls._fail_stopped(cls.objects.filter(Q(pk__in=dead) | still_stale), timeout)

    @classmethod
    def reap(cls) -> int:
        """Mark failed every running task (of any remote) whose heartbeat is older than the
        timeout; returns how many. Workers call this when they start and periodically."""
        timeout = cls.heartbeat_timeout()
        cutoff = timezone.now() - timeout
        return cls._fail_stopped(
            cls.objects.filter(Q(heartbeat__lt=cutoff)
                               | Q(heartbeat__isnull=True, started__lt=cutoff)),
            timeout)

    @classmethod
    def _fail_stopped(cls, tasks, timeout: timedelta) -> int:
        """Mark the running ones of ``tasks`` failed because their worker stopped."""
        return tasks.filter(state=cls.State.RUNNING).update(
            state=cls.State.FAILED, finished=timezone.now(),
            error=cls.WORKER_STOPPED.format(age=timeout.total_seconds()))

    def cancel(self, by: str = "") -> bool:
        """End this task as ``canceled`` if it is waiting or running; returns whether it was.

        A waiting task never starts; a running one stops at its next progress report (within
        a second or so): downloads in flight are cancelled, files already stored stay."""
        who = f" by {by}" if by else ""
        updated = SyncTask.objects.filter(pk=self.pk, state__in=self.ACTIVE_STATES).update(
            state=self.State.CANCELED, finished=timezone.now(), error=f"Canceled{who}.")
        self.refresh_from_db()
        return bool(updated)

    def _last_sign(self) -> datetime:
        return self.heartbeat or self.started or self.created

    def _process_is_gone(self) -> bool:
        host, _, pid = self.worker.rpartition(":")
        return host == socket.gethostname() and pid.isdigit() and not process_exists(int(pid))

    @staticmethod
    def this_worker() -> str:
        """The ``worker`` value for the current process."""
        return f"{socket.gethostname()}:{os.getpid()}"


class PendingArtifactFile(models.Model):
    """A validated file being moved under an Artifact path whose row is not committed yet.

    Written before the move and deleted in the transaction that creates the Artifact, so a
    process killed in between leaves a record, and the next sync removes the orphan file.
    """

    sha256 = models.CharField(max_length=64, unique=True)
    path = models.CharField(max_length=255)
    created = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = "pending artifact file"
