"""What a task's admin page shows of it, as parts the page renders once and then replaces
from each poll of ``progress/``, so the page follows the task without a reload.

Each part is HTML rendered here only: the page wraps it in an element marked
``data-live="<name>"`` (:func:`live`) and its script puts the poll's ``parts[name]`` there.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import SyncTask
from ..sizes import human_size
from . import display, throughput

#: The page lists this many failures (the API has them all).
MAX_FAILURES_SHOWN = 200
#: How long a canceled task's page keeps asking for its summary, which the worker writes
#: once it noticed the cancel (within a few seconds, unless it died).
SETTLE = timedelta(seconds=60)
#: Summary keys in the order the page lists them, with their labels; sizes are humanized.
SUMMARY_LABELS = {
    "listed": "files listed", "already_present": "already stored", "downloaded": "downloaded",
    "restored": "restored (missing from storage)", "bytes_downloaded": "bytes downloaded",
    "failed": "failed",
}


def is_settling(task: SyncTask, now: datetime | None = None) -> bool:
    """Canceled while it ran, and its worker may still be writing the summary."""
    now = now or timezone.now()
    return (task.state == SyncTask.State.CANCELED and task.started is not None
            and not task.summary and task.finished is not None
            and now - task.finished < SETTLE)


def is_live(task: SyncTask, now: datetime | None = None) -> bool:
    """Whether the page should keep asking: the task waits, runs or settles."""
    return task.is_active or is_settling(task, now)


def summary_rows(summary: dict) -> list[tuple[str, Any]]:
    """The summary's ``(label, value)`` rows, known keys first; byte counts humanized."""
    rows = []
    for key in [*SUMMARY_LABELS, *sorted(set(summary) - set(SUMMARY_LABELS))]:
        if key not in summary:
            continue
        value = summary[key]
        if key.startswith("bytes") and isinstance(value, int):
            value = display.sized(value)
        rows.append((SUMMARY_LABELS.get(key, key.replace("_", " ")), value))
    return rows


def failures(task: SyncTask) -> list[dict[str, str]]:
    """The first :data:`MAX_FAILURES_SHOWN` failures as path, URL and error."""
    return [
        {"path": item.get("relative_path") or item.get("file", ""),
         "url": item.get("url", ""),
         "error": (f"{item['problem']}: " if item.get("problem") else "")
                  + item.get("error", "")}
        for item in (task.failures or [])[:MAX_FAILURES_SHOWN]
    ]


def _error(task: SyncTask, now: datetime) -> str:
    return format_html('<span class="task-error">{}</span>', task.error) if task.error else "—"


def _summary(task: SyncTask, now: datetime) -> str:
    return render_to_string("admin/pulp_downloads/synctask/summary.html",
                            {"summary": summary_rows(task.summary or {})})


def _failures(task: SyncTask, now: datetime) -> str:
    return render_to_string("admin/pulp_downloads/synctask/failures.html", {
        "failures": failures(task), "failures_total": len(task.failures or [])})


#: The live parts by name, each rendered from the task (and the time, for a running one).
_PARTS: dict[str, Callable[[SyncTask, datetime], str]] = {
    "badge": lambda task, now: display.badge(task),
    "started": lambda task, now: display.short_date(task.started),
    "finished": lambda task, now: display.short_date(task.finished),
    "duration": lambda task, now: display.run_time(task, now),
    "error": _error,
    "summary": _summary,
    "failures": _failures,
}
#: Parts that hold a table: put in a ``div``, the others in a ``span``.
_BLOCKS = frozenset({"summary", "failures"})


def parts(task: SyncTask, now: datetime | None = None) -> dict[str, str]:
    """Every live part of the page, by name, as HTML."""
    now = now or timezone.now()
    return {name: str(render(task, now)) for name, render in _PARTS.items()}


def live(task: SyncTask, name: str) -> SafeString:
    """Part ``name`` of the task in the element the page's script replaces with the poll's
    ``parts[name]``."""
    tag = "div" if name in _BLOCKS else "span"
    return format_html('<{} data-live="{}">{}</{}>', tag, name,
                       _PARTS[name](task, timezone.now()), tag)


def bar(task: SyncTask, now: datetime | None = None) -> dict[str, Any]:
    """The progress bar's numbers and line, and whether the page keeps asking (``live``);
    a sample of the task's throughput is taken (:func:`throughput.observe`)."""
    now = now or timezone.now()
    if task.is_active:
        rate = throughput.observe(str(task.pk), task.bytes_done, now.timestamp())
    else:
        rate = None
        throughput.forget(str(task.pk))
    remaining = max(task.bytes_total - task.bytes_done, 0)
    eta = throughput.time_left(remaining, rate) if task.is_active else None
    # A partial task's outcome says how many failed already.
    failed = (f", {task.files_failed} failed" if task.files_failed and not task.is_partial
              else "")
    return {
        "state": task.state,
        "outcome": task.outcome,
        "partial": task.is_partial,
        "active": task.is_active,
        "live": is_live(task, now),
        "percent": display.percent(task),
        "files": f"{task.files_done} of {task.files_total} files{failed}",
        # No size known (a size-only repair reads no bytes): no "0 bytes of 0 bytes".
        "bytes": (f"{human_size(task.bytes_done)} of {human_size(task.bytes_total)}"
                  if task.bytes_total else ""),
        "rate": f"{human_size(int(rate))}/s" if rate is not None else "",
        "eta": f"about {display.duration(eta)} left" if eta is not None else "",
    }


def progress(task: SyncTask, now: datetime | None = None) -> dict[str, Any]:
    """What one poll answers, as JSON-ready values: :func:`bar` and every part
    (:func:`parts`)."""
    now = now or timezone.now()
    return {**bar(task, now), "parts": parts(task, now)}
