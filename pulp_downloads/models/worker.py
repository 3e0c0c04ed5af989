"""Worker: a task worker process that is (or was recently) alive, as ``/status/`` reports it."""
from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone


class Worker(models.Model):
    """One ``manage.py db_worker`` process, named ``hostname:pid``.

    The worker writes ``heartbeat`` when it starts and then periodically, and deletes its row
    when it stops cleanly; a worker killed outright leaves a row whose heartbeat ages and is
    no longer counted as online (see :meth:`online`).
    """

    name = models.CharField(max_length=255, unique=True)
    started = models.DateTimeField(default=timezone.now)
    heartbeat = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["name"]
        #: Reading /metrics (the site's figures, not a model's rows) is granted with this.
        permissions = [("view_metrics", "Can view the Prometheus metrics")]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def beat(cls, name: str) -> None:
        """Record that worker ``name`` is alive now."""
        now = timezone.now()
        updated = cls.objects.filter(name=name).update(heartbeat=now)
        if not updated:
            cls.objects.get_or_create(name=name, defaults={"started": now, "heartbeat": now})

    @classmethod
    def online(cls, timeout: timedelta):
        """Workers whose last heartbeat is younger than ``timeout``."""
        return cls.objects.filter(heartbeat__gte=timezone.now() - timeout)

    @classmethod
    def forget_stale(cls, older_than: timedelta) -> int:
        """Delete the rows of workers silent for longer than ``older_than``."""
        deleted, _ = cls.objects.filter(heartbeat__lt=timezone.now() - older_than).delete()
        return deleted
