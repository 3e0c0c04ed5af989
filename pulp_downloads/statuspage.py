"""``/status/`` as a page for people: what the JSON says, in the admin's look, with sizes and
times in human form; users allowed to see tasks also get the latest tasks with their
badges (a partial sync amber, as everywhere)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html

from .admin import display
from .models import SyncTask
from .sizes import human_size

#: How many of the latest tasks the page lists.
RECENT_TASKS = 10


def storage_line(storage: dict[str, Any]) -> str:
    """``filesystem, writable · 120 GB free of 500 GB``."""
    writable = {True: "writable", False: "NOT writable", None: "not checked"}[storage["writable"]]
    line = f"{storage['backend']}, {writable}"
    if storage.get("total"):
        line += f" · {human_size(storage['free'])} free of {human_size(storage['total'])}"
    return line


def workers_line(workers: dict[str, Any] | None, now: datetime) -> str:
    """``2 online · last heartbeat 3 s ago``; ``none online`` without workers."""
    if workers is None:
        return "unknown (no database)"
    if not workers["online"]:
        return "none online: queued tasks wait until a worker starts"
    line = f"{workers['online']} online"
    last = parse_datetime(workers["last_heartbeat"] or "")
    if last is not None:
        line += f" · last heartbeat {display.duration(max((now - last).total_seconds(), 0))} ago"
    return line


def facts(body: dict[str, Any], now: datetime | None = None) -> list[tuple[str, str]]:
    """The page's ``(label, text)`` rows, from the JSON answer ``body``."""
    now = now or timezone.now()
    database = body["database"]
    tasks = body["tasks"]
    versions = body["versions"]
    return [
        ("Database", f"{database['vendor']}, "
                     + ("connected" if database["connected"] else "NOT connected")),
        ("Storage", storage_line(body["storage"])),
        ("Workers", workers_line(body["workers"], now)),
        ("Tasks", f"{tasks['waiting']} waiting, {tasks['running']} running" if tasks
                  else "unknown (no database)"),
        ("Versions", f"pulp_downloads {versions['pulp_downloads']} · Django "
                     f"{versions['django']} · Python {versions['python']}"),
    ]


def recent_tasks(request: HttpRequest) -> list[dict[str, Any]] | None:
    """The latest tasks as table rows, or ``None`` for a user not allowed to see tasks."""
    if not request.user.has_perm("pulp_downloads.view_synctask"):
        return None
    tasks = SyncTask.objects.select_related("remote").order_by("-created")[:RECENT_TASKS]
    return [{"link": format_html('<a href="{}">{}</a>', reverse(
                 "admin:pulp_downloads_synctask_change", args=[task.pk]),
                 display.title(task)),
             "created": display.short_date(task.created), "badge": display.badge(task),
             "progress": display.one_line(task)} for task in tasks]


def render_status(request: HttpRequest, body: dict[str, Any]) -> HttpResponse:
    """The page for the JSON answer ``body``."""
    healthy = body["status"] == "ok"
    context = {
        **admin.site.each_context(request),
        "title": "Status",
        "body": body,
        "healthy": healthy,
        "facts": facts(body),
        "recent": recent_tasks(request) if body["database"]["connected"] else None,
    }
    return render(request, "pulp_downloads/status.html", context)
