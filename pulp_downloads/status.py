"""``GET /status/``: what an operator (or a probe) needs to know the site is healthy.

Answers 200 while the web process serves requests, whatever it finds, with the details as
JSON (as pulpcore's status API does): ``status`` is ``"ok"`` when the database answers and
the storage is usable, else ``"degraded"``.

The same answer is a page for people: a client that prefers ``text/html`` (a browser) gets
it in the admin's look, sizes and times in human form, and, for users allowed to see tasks,
the latest tasks; every other client (``application/json``, ``*/*``, no ``Accept``) gets the
JSON. ``?format=json`` or ``?format=html`` chooses. Answers carry ``Vary: Accept``.
"""
from __future__ import annotations

import os
import platform
import shutil
from typing import Any

import django
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers

import pulp_downloads

from .models import SyncTask, Worker
from .statuspage import render_status


def database_status() -> dict[str, Any]:
    """Whether the database answers a query, and which one it is."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connected = True
    except DatabaseError:
        connected = False
    return {"connected": connected, "vendor": connection.vendor}


def storage_status(storage=None) -> dict[str, Any]:
    """The storage backend, whether files can be written, and (on a local filesystem) its
    free and total space in bytes."""
    storage = storage or default_storage
    if isinstance(storage, FileSystemStorage):
        location = storage.location
        probe = location
        while probe and not os.path.exists(probe):  # MEDIA_ROOT is made on first write
            probe = os.path.dirname(probe)
        usage = shutil.disk_usage(probe) if probe else None
        return {"backend": "filesystem",
                "writable": bool(probe) and os.access(probe, os.W_OK | os.X_OK),
                "free": usage.free if usage else None,
                "total": usage.total if usage else None}
    from .storage.objects import ObjectStore

    objects = ObjectStore.of(storage)
    return {"backend": "s3" if objects is not None else type(storage).__name__,
            "writable": objects.reachable() if objects is not None else None,
            "free": None, "total": None}


def workers_status() -> dict[str, Any]:
    """Workers with a recent heartbeat, and the latest heartbeat seen."""
    online = Worker.online(SyncTask.heartbeat_timeout())
    latest = online.order_by("-heartbeat").values_list("heartbeat", flat=True).first()
    return {"online": online.count(),
            "last_heartbeat": latest.isoformat() if latest else None}


def tasks_status() -> dict[str, int]:
    """How many sync tasks wait and run."""
    counts = SyncTask.count_by_state()
    return {"waiting": counts["waiting"], "running": counts["running"]}


def collect() -> dict[str, Any]:
    """The site's health, as the JSON answer has it (see the module's docstring)."""
    database = database_status()
    storage = storage_status()
    body: dict[str, Any] = {
        "status": "ok",
        "versions": {"pulp_downloads": pulp_downloads.__version__,
                     "django": django.get_version(), "python": platform.python_version()},
        "database": database,
        "storage": storage,
    }
    if database["connected"]:
        body["workers"] = workers_status()
        body["tasks"] = tasks_status()
    else:
        body["workers"] = body["tasks"] = None
    if not database["connected"] or storage["writable"] is False:
        body["status"] = "degraded"
    return body


def wants_html(request: HttpRequest) -> bool:
    """Whether the client prefers a page to JSON (``?format=`` decides when given)."""
    chosen = request.GET.get("format")
    if chosen in ("json", "html"):
        return chosen == "html"
    return request.get_preferred_type(["application/json", "text/html"]) == "text/html"


def status(request: HttpRequest) -> HttpResponse:
    """The site's health: JSON, or a page for browsers (see the module's docstring)."""
    body = collect()
    if wants_html(request):
        response = render_status(request, body)
    else:
        response = JsonResponse(body)
    patch_vary_headers(response, ["Accept"])
    return response
