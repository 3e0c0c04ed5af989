"""``manage.py sync_remote NAME [--enqueue [--wait] | --cancel] [--json | --quiet]``: sync a
remote now, queue it for a worker (and follow it), or cancel its waiting or running sync."""
from __future__ import annotations

import contextlib
import json
import logging
import sys
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from pulp_downloads.management.interrupt import EXIT_INTERRUPTED, CtrlC
from pulp_downloads.models import Remote, SyncTask
from pulp_downloads.sync import SyncProgress
from pulp_downloads.tasks import SyncAlreadyActive, enqueue_sync, run_sync_now


class TerminalProgress:
    """Two tqdm bars (files, bytes) on a terminal."""

    def __init__(self, stream) -> None:
        from tqdm import tqdm

        self.files = tqdm(total=0, unit="file", desc="files", file=stream, position=0,
                          dynamic_ncols=True)
        self.bytes = tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1000, desc="bytes",
                          file=stream, position=1, dynamic_ncols=True)

    def __call__(self, state: SyncProgress) -> None:
        for bar, done, total in ((self.files, state.files_done, state.files_total),
                                 (self.bytes, state.bytes_done, state.bytes_total)):
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    def close(self) -> None:
        self.files.close()
        self.bytes.close()


class LineProgress:
    """A plain line every ``interval`` seconds (logs, pipes, CI)."""

    def __init__(self, write, interval: float = 5.0) -> None:
        self.write = write
        self.interval = interval
        self.last = 0.0
        self.unwritten: SyncProgress | None = None

    def __call__(self, state: SyncProgress) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line(state)
            self.unwritten = None
        else:
            self.unwritten = state

    def _line(self, state: SyncProgress) -> None:
        failed = f" ({state.files_failed} failed)" if state.files_failed else ""
        self.write(f"progress: {state.files_done}/{state.files_total} files{failed}, "
                   f"{state.bytes_done / 1e6:.1f}/{state.bytes_total / 1e6:.1f} MB")

    def close(self) -> None:
        if self.unwritten is not None:  # the final state, so the last line is the truth
            self._line(self.unwritten)


class Command(BaseCommand):
    help = "Sync a remote's PULP_MANIFEST into Artifacts, in this process or on a worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the remote's name")
        parser.add_argument("--enqueue", action="store_true",
                            help="queue the sync for a worker (manage.py db_worker) and exit")
        parser.add_argument("--cancel", action="store_true",
                            help="cancel the remote's waiting or running sync and exit")
        parser.add_argument("--wait", action="store_true",
                            help="with --enqueue: follow the queued sync until it ends, with "
                                 "the same progress display and exit status as a sync run here")
        parser.add_argument("--progress", choices=["auto", "bar", "lines", "none"],
                            default="auto",
                            help="progress display (auto: bars on a terminal, else lines)")
        output = parser.add_mutually_exclusive_group()
        output.add_argument("--json", action="store_true", dest="as_json",
                            help="print the finished task as JSON (as the REST API shows it) "
                                 "instead of the summary; no progress display")
        output.add_argument("--quiet", action="store_true",
                            help="no progress and no summary; errors only (exit status 1)")

    def handle(self, *args, name: str, enqueue: bool, cancel: bool, progress: str,
               wait: bool, as_json: bool, quiet: bool, **options) -> None:
        try:
            remote = Remote.objects.get(name=name)
        except Remote.DoesNotExist:
            known = ", ".join(Remote.objects.values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"No remote named {name!r} (known remotes: {known}).") from None
        if wait and not enqueue:
            raise CommandError("--wait follows a queued sync: use it with --enqueue.")

        if cancel:
            self._cancel(remote)
            return
        verbosity = 0 if quiet else options["verbosity"]
        display = None if as_json else progress_display(progress, verbosity, self.stdout)
        # Ctrl-C cancels the sync run here (a second one exits at once); on --wait it stops
        # following the queued sync, which goes on.
        with CtrlC() as ctrl_c:
            try:
                # The sync's own log line would land between the bars: shown with -v 2 only.
                with self._sync_log_quiet(options["verbosity"] < 2):
                    if enqueue:
                        try:
                            task = enqueue_sync(remote)
                        except SyncAlreadyActive as exc:
                            raise CommandError(str(exc)) from None
                        if not wait:
                            self._print_queued(task, as_json, verbosity)
                            return
                        task = self._follow(task, display, ctrl_c)
                    else:
                        try:
                            task = run_sync_now(remote, progress=display, stop=ctrl_c)
                        except SyncAlreadyActive as exc:
                            raise CommandError(str(exc)) from None
            finally:
                if display is not None:
                    display.close()
            if ctrl_c and task.state in SyncTask.ACTIVE_STATES:  # --wait: it goes on
                self.stderr.write(
                    f"Stopped following; the sync of {remote.name!r} goes on on a worker: "
                    f"{reverse('task-detail', kwargs={'pk': task.pk})}\n"
                    f"Cancel it with: manage.py sync_remote {remote.name} --cancel")
                raise SystemExit(EXIT_INTERRUPTED)
            if ctrl_c and task.state == SyncTask.State.CANCELED and not enqueue:
                stored = remote.content_units.filter(artifact__isnull=False).count()
                listed = max(remote.content_units.count(), task.files_total)
                self.stderr.write(f"Canceled: {stored} of {listed} files stored; run it "
                                  "again to go on.")
                raise SystemExit(EXIT_INTERRUPTED)
        if as_json:
            self.stdout.write(self._json(task))
        elif verbosity > 0:
            self._summarise(remote, task)
        if task.state != "completed" or task.failures:
            outcome = ("completed with failed files" if task.state == "completed"
                       else task.state)
            lines = [f"Sync of {remote.name!r} {outcome}: {task.error}"]
            for failure in task.failures[:20]:
                lines.append(f"  {failure['relative_path']}: {failure['error']}")
            if len(task.failures) > 20:
                lines.append(f"  ... and {len(task.failures) - 20} more")
            raise CommandError("\n".join(lines))
        if verbosity > 0 and not as_json:
            self.stdout.write(self.style.SUCCESS(f"Sync of {remote.name!r} completed."))

    def _print_queued(self, task: SyncTask, as_json: bool, verbosity: int) -> None:
        if as_json:
            self.stdout.write(self._json(task))
            return
        self.stdout.write(reverse("task-detail", kwargs={"pk": task.pk}))
        if verbosity > 1:
            self.stderr.write(f"task {task.pk} is {task.state}")

    @staticmethod
    def _json(task: SyncTask) -> str:
        return task_json(task)

    def _summarise(self, remote: Remote, task: SyncTask) -> None:
        summary = task.summary or {}
        if not summary:
            return
        deferred = summary.get("deferred", 0)
        restored = summary.get("restored", 0)
        self.stdout.write(
            f"{remote.name}: {summary.get('listed', 0)} listed, "
            f"{summary.get('already_present', 0)} already present, "
            f"{summary.get('downloaded', 0)} downloaded "
            f"({summary.get('bytes_downloaded', 0) / 1e6:.1f} MB"
            + (f"; {restored} restored: missing from storage" if restored else "") + "), "
            f"{summary.get('failed', 0)} failed"
            + (f", {deferred} left to download on demand ({remote.policy})." if deferred
               else ".")
        )

    @staticmethod
    def _follow(task: SyncTask, display, ctrl_c: CtrlC, interval: float = 0.5) -> SyncTask:
        """Watch a queued task until it ends (or until Ctrl-C), showing its progress."""
        while not ctrl_c:
            task.refresh_from_db()
            if display is not None:
                display(SyncProgress(
                    files_total=task.files_total, files_done=task.files_done,
                    files_failed=task.files_failed, bytes_total=task.bytes_total,
                    bytes_done=task.bytes_done, stage=task.state))
            if task.state not in SyncTask.ACTIVE_STATES:
                return task
            time.sleep(interval)
        task.refresh_from_db()
        return task

    @staticmethod
    @contextlib.contextmanager
    def _sync_log_quiet(quiet: bool):
        logger = logging.getLogger("pulp_downloads.sync")
        level = logger.level
        if quiet:
            logger.setLevel(logging.WARNING)
        try:
            yield
        finally:
            logger.setLevel(level)

    def _cancel(self, remote: Remote) -> None:
        active = SyncTask.objects.filter(remote=remote, state__in=SyncTask.ACTIVE_STATES).first()
        if active is None or not active.cancel(by="manage.py sync_remote --cancel"):
            raise CommandError(f"No sync of {remote.name!r} is waiting or running.")
        self.stdout.write(f"Canceled the sync of {remote.name!r} (task {active.pk}).")

def progress_display(mode: str, verbosity: int, stdout):
    """What shows a task's progress: bars on a terminal (``auto``) or with ``bar``, plain
    lines on ``stdout`` otherwise, nothing with ``none`` or verbosity 0."""
    if mode == "none" or verbosity == 0:
        return None
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return TerminalProgress(sys.stderr)
    return LineProgress(lambda text: stdout.write(text))


def task_json(task: SyncTask) -> str:
    """The task as JSON, as the REST API shows it (paths for links: no request here)."""
    from pulp_downloads.api.serializers import SyncTaskSerializer

    return json.dumps(SyncTaskSerializer(task).data, default=str)
