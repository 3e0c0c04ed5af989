"""How sync tasks look in the admin: state badges, human-readable progress, rate and ETA."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.html import format_html

from ..models import SyncTask

#: Badge colours by state (background, text), readable in light and dark admin themes.
BADGE_COLOURS = {
    SyncTask.State.WAITING: ("#6c757d", "#fff"),
    SyncTask.State.RUNNING: ("#1f6feb", "#fff"),
    SyncTask.State.COMPLETED: ("#1a7f37", "#fff"),
    SyncTask.State.FAILED: ("#cf222e", "#fff"),
    SyncTask.State.CANCELED: ("#9a6700", "#fff"),
}
#: The task page lists this many failures (the API has them all).
MAX_FAILURES_SHOWN = 200


def badge(task: SyncTask) -> str:
    """The task's state as a coloured label."""
    background, colour = BADGE_COLOURS[task.state]
    return format_html(
        '<span class="sync-state sync-state-{}" style="background:{};color:{};padding:1px 8px;'
        'border-radius:9px;font-size:11px;font-weight:600;white-space:nowrap">{}</span>',
        task.state, background, colour, task.get_state_display())


def size(count: int) -> str:
    """``9175040`` -> ``8.8 MB`` (binary multiples, as Django's ``filesizeformat``)."""
    return filesizeformat(count).replace("\xa0", " ")


def duration(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``; ``3725`` -> ``1 h 2 min``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s" if seconds else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def elapsed(task: SyncTask, now: datetime | None = None) -> timedelta | None:
    """How long the task ran (or has run so far); ``None`` before it started."""
    if task.started is None:
        return None
    end = task.finished or now or timezone.now()
    return max(end - task.started, timedelta(0))


def run_time(task: SyncTask) -> str:
    """How long the task ran, for people; ``—`` before it started."""
    spent = elapsed(task)
    return duration(spent.total_seconds()) if spent is not None else "—"


def percent(task: SyncTask) -> int:
    """Share done, by bytes when the sizes are known, else by files; 100 once completed."""
    if task.state == SyncTask.State.COMPLETED:
        return 100
    if task.bytes_total:
        return min(100, task.bytes_done * 100 // task.bytes_total)
    if task.files_total:
        return min(100, (task.files_done + task.files_failed) * 100 // task.files_total)
    return 0


def progress(task: SyncTask, now: datetime | None = None) -> dict[str, Any]:
    """Everything the task page shows of a task's progress, as JSON-ready values."""
    spent = elapsed(task, now)
    seconds = spent.total_seconds() if spent is not None else 0.0
    rate = task.bytes_done / seconds if seconds >= 0.5 else None
    remaining = max(task.bytes_total - task.bytes_done, 0)
    eta = remaining / rate if rate and task.is_active and remaining else None
    failed = f", {task.files_failed} failed" if task.files_failed else ""
    return {
        "state": task.state,
        "state_label": task.get_state_display(),
        "active": task.is_active,
        "percent": percent(task),
        "files": f"{task.files_done} of {task.files_total} files{failed}",
        "bytes": f"{size(task.bytes_done)} of {size(task.bytes_total)}",
        "rate": f"{size(int(rate))}/s" if rate is not None else "",
        "eta": f"about {duration(eta)} left" if eta is not None else "",
        "duration": duration(seconds) if spent is not None else "",
        "error": task.error,
        "failures": [
            {"path": item.get("relative_path") or item.get("file", ""),
             "url": item.get("url", ""),
             "error": (f"{item['problem']}: " if item.get("problem") else "")
                      + item.get("error", "")}
            for item in (task.failures or [])[:MAX_FAILURES_SHOWN]
        ],
        "failures_total": len(task.failures or []),
    }


def one_line(task: SyncTask) -> str:
    """``12/30 files · 3.4 MB of 9.1 MB (37 %)`` for the task list."""
    failed = f" ({task.files_failed} failed)" if task.files_failed else ""
    return (f"{task.files_done}/{task.files_total} files{failed} · {size(task.bytes_done)} of "
            f"{size(task.bytes_total)} ({percent(task)} %)")
