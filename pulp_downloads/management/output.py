"""What the management commands print about tasks and other objects.

For scripts (``--json``): objects as the REST API shows them, with hrefs made absolute under
``PULP_DOWNLOADS_BASE_URL`` when it is set (paths otherwise) and timestamps in ISO 8601, as
the API writes them. For people: one line per task (the worker's log, ``task list``) and its
progress, with sizes through :func:`~pulp_downloads.sizes.human_size` and the state as
:attr:`SyncTask.outcome <pulp_downloads.models.SyncTask.outcome>` says it.
"""
from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from pulp_downloads.conf import app_settings
from pulp_downloads.models import SyncTask
from pulp_downloads.sizes import human_size

__all__ = ["api_url", "iso_datetime", "task_data", "task_end", "task_href", "task_progress",
           "task_target", "task_title", "to_json"]


def iso_datetime(value: datetime.datetime) -> str:
    """``2026-01-02T03:04:05.123456Z``: ISO 8601, in the site's time zone, as DRF writes
    the API's timestamps."""
    if settings.USE_TZ and timezone.is_aware(value):
        value = value.astimezone(timezone.get_current_timezone())
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, datetime.datetime):
            return iso_datetime(o)
        if isinstance(o, (datetime.date, datetime.time)):
            return o.isoformat()
        if isinstance(o, uuid.UUID):
            return str(o)
        return super().default(o)


def to_json(data: Any, indent: int | None = None) -> str:
    """``data`` as JSON, datetimes in ISO 8601 (:func:`iso_datetime`)."""
    return json.dumps(data, indent=indent, cls=_Encoder)


def api_url(path: str) -> str:
    """``path`` under ``PULP_DOWNLOADS_BASE_URL`` when it is set, else ``path`` itself."""
    return app_settings().base_url + path


def task_href(task: SyncTask) -> str:
    """The task's API href, as its ``--json`` shows it."""
    return api_url(reverse("task-detail", kwargs={"pk": task.pk}))


def task_data(task: SyncTask) -> dict:
    """The task as the REST API shows it (``GET /api/tasks/{id}/``), hrefs as
    :func:`api_url` makes them.

    The API's serializer is the one definition of that shape; this is the only place the
    commands reach for it, so none of them depends on the API package.
    """
    from pulp_downloads.api.serializers import SyncTaskSerializer

    return json.loads(to_json(SyncTaskSerializer(task).data))


def task_target(task: SyncTask) -> str:
    """``remote sample``, ``all remotes`` or ``chosen artifacts``."""
    return f"remote {task.remote.name}" if task.remote_id is not None else task.target


def task_title(task: SyncTask) -> str:
    """``sync 6f1c... of remote sample``, ``repair 6f1c... of all remotes``."""
    return f"{task.kind} {task.pk} of {task_target(task)}"


def task_progress(task: SyncTask, failed: bool = True) -> str:
    """``12 of 40 files stored, 3.40 MB of 9.10 MB`` (a sync), ``5 of 5 files checked``
    (a repair; bytes only when it read them); with ``failed``, ``2 failed`` added when
    files failed."""
    verb = "checked" if task.kind == SyncTask.Kind.REPAIR else "stored"
    text = f"{task.files_done} of {task.files_total} files {verb}"
    if failed and task.files_failed:
        text += f", {task.files_failed} failed"
    if task.bytes_total:
        text += f", {human_size(task.bytes_done)} of {human_size(task.bytes_total)}"
    return text


def task_end(task: SyncTask) -> str:
    """How a finished task ended, for people: ``completed (40 of 40 files stored, ...)``,
    ``completed, 2 failed (38 of 40 files stored, ...)``, ``canceled (12 of 40 files
    stored, ...)``, ``canceled before it started``, ``failed: <error>``; for a task still
    active, its state."""
    if task.state == SyncTask.State.FAILED:
        return f"failed: {task.error or 'no error recorded'}"
    if task.state == SyncTask.State.CANCELED and task.started is None:
        return "canceled before it started"
    if task.state in (SyncTask.State.COMPLETED, SyncTask.State.CANCELED):
        return f"{task.outcome.lower()} ({task_progress(task, failed=not task.is_partial)})"
    return str(task.state)
