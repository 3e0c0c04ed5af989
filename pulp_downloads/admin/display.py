"""How tasks, sizes and dates look in the admin: state badges (amber for a partial sync),
short dates, human sizes with the exact count as a tooltip, one-line progress."""
from __future__ import annotations

from datetime import datetime, timedelta

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..models import SyncTask
from ..sizes import exact_bytes, human_size
from ..templatetags.sizes import sized

__all__ = ["badge", "sized", "size_in_full", "short_date", "title", "target_link", "heading",
           "duration", "elapsed", "run_time", "percent", "one_line", "ADMIN_CSS"]

#: Badge colours by state (background, text), readable in light and dark admin themes.
BADGE_COLOURS = {
    SyncTask.State.WAITING: ("#d0d7de", "#1f2328"),
    SyncTask.State.RUNNING: ("#1f6feb", "#fff"),
    SyncTask.State.COMPLETED: ("#1a7f37", "#fff"),
    SyncTask.State.FAILED: ("#cf222e", "#fff"),
    SyncTask.State.CANCELED: ("#57606a", "#fff"),
}
#: A completed task some of whose files failed: amber, never the green of a full success.
PARTIAL_COLOURS = ("#d29922", "#1f2328")
#: The admin's stylesheet of this app (``class Media: css = ADMIN_CSS``): wrapping digests,
#: URLs and errors so that every list and page fits a 1280 px window.
ADMIN_CSS = {"all": ("pulp_downloads/admin.css",)}
#: ``Y-m-d H:i``: short enough for a list column, unambiguous in every locale.
SHORT_DATE = "%Y-%m-%d %H:%M"


def badge(task: SyncTask) -> SafeString:
    """The task's outcome as a coloured label: ``Running``, ``Completed, 2 failed`` ..."""
    background, colour = PARTIAL_COLOURS if task.is_partial else BADGE_COLOURS[task.state]
    classes = f"sync-state sync-state-{task.state}" + (" sync-state-partial"
                                                       if task.is_partial else "")
    return format_html(
        '<span class="{}" style="background:{};color:{};padding:1px 8px;border-radius:9px;'
        'font-size:11px;font-weight:600;white-space:nowrap">{}</span>',
        classes, background, colour, task.outcome)


def size_in_full(count: int) -> str:
    """``1.36 MB (1,357,417 bytes)``, for a detail page."""
    return f"{human_size(count)} ({exact_bytes(count)})" if count >= 1000 else human_size(count)


def short_date(moment: datetime | None) -> SafeString:
    """``2026-11-25 23:09`` (local time) with the full time as its tooltip; ``—`` when
    ``None``."""
    if moment is None:
        return format_html("{}", "—")
    local = timezone.localtime(moment)
    day, time = local.strftime(SHORT_DATE).split(" ")
    # In a narrow column it breaks between the day and the time, never inside either.
    return format_html('<time datetime="{}" title="{}"><span class="nowrap">{}</span> '
                       '<span class="nowrap">{}</span></time>', moment.isoformat(),
                       local.strftime("%Y-%m-%d %H:%M:%S %Z"), day, time)


def title(task: SyncTask) -> str:
    """``Sync of uxd-big``, ``Repair of all remotes``."""
    return f"{task.get_kind_display()} of {task.target}"


def target_link(task: SyncTask) -> SafeString:
    """The task's remote as a link to its admin page; the target as text when the task is
    of no single remote (a repair of all remotes, or of chosen artifacts)."""
    if task.remote_id is None:
        return format_html("{}", task.target)
    url = reverse("admin:pulp_downloads_remote_change", args=[task.remote_id])
    return format_html('<a href="{}" class="task-remote">{}</a>', url, task.target)


def heading(task: SyncTask) -> SafeString:
    """``Sync of <a>uxd-big</a>``: the task page's title, its remote a link."""
    return format_html("{} of {}", task.get_kind_display(), target_link(task))


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


def run_time(task: SyncTask, now: datetime | None = None) -> str:
    """How long the task ran, for people; ``—`` before it started."""
    spent = elapsed(task, now)
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


def one_line(task: SyncTask) -> str:
    """``12/30 files · 3.40 MB of 9.10 MB (37 %)`` for the task list; without the bytes when
    no size is known (a size-only repair reads no bytes, an ``on_demand`` sync stores none)."""
    failed = f" ({task.files_failed} failed)" if task.files_failed else ""
    files = f"{task.files_done}/{task.files_total} files{failed}"
    if not task.bytes_total:
        return f"{files} ({percent(task)} %)"
    return (f"{files} · {human_size(task.bytes_done)} of {human_size(task.bytes_total)} "
            f"({percent(task)} %)")
