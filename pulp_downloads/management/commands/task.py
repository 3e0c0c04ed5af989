"""``manage.py task``: list, show and cancel tasks (syncs and repairs) from the command line.

``list`` and ``show`` print for people (states as the admin says them, sizes through
``human_size``) or, with ``--json``, the task as ``GET /api/tasks/{id}/`` shows it. A task is
named by its id, as the API, the admin and the worker's log show it, or by the first
characters of it when no other task's id starts with them. ``cancel`` does what the API's
cancel does.
"""
from __future__ import annotations

import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from pulp_downloads.management.output import (task_data, task_end, task_href, task_progress,
                                              task_target, task_title, to_json)
from pulp_downloads.management.subcommands import add_subcommands
from pulp_downloads.models import Remote, SyncTask

#: What may be the start of a task id (hex digits and dashes).
_ID_PREFIX = re.compile(r"[0-9a-fA-F-]{1,36}")
#: How many failed files ``show`` lists.
SHOWN_FAILURES = 20


def _when(value) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


class Command(BaseCommand):
    help = ("Tasks (syncs and repairs): list [--remote NAME] [--state S] [--kind K], show ID, "
            "cancel ID.")

    def add_arguments(self, parser: CommandParser) -> None:
        sub = add_subcommands(parser)
        listing = sub.add_parser("list", help="list tasks, newest first",
                                 description="List tasks, newest first.")
        listing.add_argument("--remote", metavar="NAME", help="only the tasks of this remote")
        listing.add_argument("--state", choices=SyncTask.State.values,
                             help="only the tasks in this state")
        listing.add_argument("--kind", choices=SyncTask.Kind.values,
                             help="only syncs, or only repairs")
        listing.add_argument("--limit", type=int, default=50, metavar="N",
                             help="at most N tasks (default: 50; 0: all)")
        listing.add_argument("--json", action="store_true", dest="as_json",
                             help="print a JSON list of tasks as the REST API shows them")
        show = sub.add_parser("show", help="show one task",
                              description="Show one task: state, times, progress, error, "
                                          "summary and failed files.")
        show.add_argument("task_id", metavar="ID",
                          help="the task's id (or its first characters)")
        show.add_argument("--json", action="store_true", dest="as_json",
                          help="print the task as the REST API shows it")
        cancel = sub.add_parser(
            "cancel", help="cancel a waiting or running task",
            description="Cancel a waiting or running task, as the API's cancel does: a "
                        "waiting task never starts, a running one stops within a second or "
                        "so; files already stored stay.")
        cancel.add_argument("task_id", metavar="ID",
                            help="the task's id (or its first characters)")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"do_{action}")(**options)

    def do_list(self, remote: str | None = None, state: str | None = None,
                kind: str | None = None, limit: int = 50, as_json: bool = False,
                **options) -> None:
        if limit < 0:
            raise CommandError("--limit: give a number of tasks, or 0 for all.")
        tasks = SyncTask.objects.select_related("remote").order_by("-created")
        if remote is not None:
            if not Remote.objects.filter(name=remote).exists():
                raise CommandError(f"--remote: no remote named {remote!r}.")
            tasks = tasks.filter(remote__name=remote)
        if state is not None:
            tasks = tasks.filter(state=state)
        if kind is not None:
            tasks = tasks.filter(kind=kind)
        if limit:
            tasks = tasks[:limit]
        if as_json:
            self.stdout.write(to_json([task_data(task) for task in tasks], indent=2))
            return
        rows = [("ID", "KIND", "TARGET", "STATE", "CREATED", "PROGRESS")] + [
            (str(task.pk), task.kind, task.target, task.outcome, _when(task.created)[:16],
             task_progress(task) if task.started else "-")
            for task in tasks]
        if len(rows) == 1:
            self.stdout.write("No tasks.")
            return
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths))
                              .rstrip())

    def do_show(self, task_id: str, as_json: bool = False, **options) -> None:
        task = self._get(task_id)
        if as_json:
            self.stdout.write(to_json(task_data(task), indent=2))
            return
        lines: list[tuple[str, Any]] = [
            ("id", task.pk), ("href", task_href(task)), ("kind", task.kind),
            ("target", task_target(task)), ("state", task.outcome),
            ("created", _when(task.created)), ("started", _when(task.started)),
            ("finished", _when(task.finished)),
        ]
        if task.started and task.finished:
            lines.append(("took", f"{(task.finished - task.started).total_seconds():.1f} s"))
        if task.worker:
            lines.append(("worker", task.worker))
        if task.options:
            lines.append(("options", ", ".join(f"{k}={v}" for k, v in task.options.items())))
        lines.append(("progress", task_progress(task) if task.started else "-"))
        if task.error:
            lines.append(("error", task.error))
        if task.summary:
            lines.append(("summary", ", ".join(f"{k.replace('_', ' ')} {v}"
                                               for k, v in task.summary.items())))
        width = max(len(name) for name, _ in lines)
        for name, value in lines:
            self.stdout.write(f"{name.ljust(width)}  {value}")
        if task.failures:
            self.stdout.write(f"failed files ({len(task.failures)}):")
            for failure in task.failures[:SHOWN_FAILURES]:
                what = failure.get("relative_path") or failure.get("file", "?")
                problem = f" ({failure['problem']})" if failure.get("problem") else ""
                self.stdout.write(f"  {what}{problem}: {failure.get('error', '')}")
            if len(task.failures) > SHOWN_FAILURES:
                self.stdout.write(f"  ... and {len(task.failures) - SHOWN_FAILURES} more "
                                  "(--json lists them all)")

    def do_cancel(self, task_id: str, **options) -> None:
        task = self._get(task_id)
        if not task.cancel(by="manage.py task cancel"):
            raise CommandError(f"The {task_title(task)} is already {task_end(task)}: only a "
                               "waiting or running task can be canceled.")
        self.stdout.write(f"Canceled the {task_title(task)}; a running task stops within a "
                          "second or so, files already stored stay.")

    @staticmethod
    def _get(task_id: str) -> SyncTask:
        """The task whose id is ``task_id``, or the only one whose id starts with it."""
        text = task_id.strip().lower()
        if not _ID_PREFIX.fullmatch(text):
            raise CommandError(f"{task_id!r} is not a task id (hex digits and dashes, as "
                               "'task list' shows them).")
        found = list(SyncTask.objects.select_related("remote")
                     .filter(pk__startswith=text)[:2])
        if not found:
            raise CommandError(f"No task with the id {task_id!r} ('task list' shows them).")
        if len(found) > 1:
            raise CommandError(f"Several tasks have an id starting with {task_id!r}: give "
                               "more of it.")
        return found[0]
