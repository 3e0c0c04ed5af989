"""``manage.py sync_remote NAME [--enqueue | --wait | --cancel] [--json | --quiet]``: sync a
remote now, queue it for a worker (and follow it), or cancel its waiting or running sync."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pulp_downloads.management.interrupt import EXIT_INTERRUPTED, CtrlC
from pulp_downloads.management.output import task_data, task_href, to_json
from pulp_downloads.management.progress import (follow, logs_above_bars, progress_display,
                                                quiet_task_logs)
from pulp_downloads.models import Remote, SyncTask
from pulp_downloads.sizes import human_size
from pulp_downloads.tasks import SyncAlreadyActive, enqueue_sync, run_sync_now


class Command(BaseCommand):
    help = "Sync a remote's PULP_MANIFEST into Artifacts, in this process or on a worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="the remote's name")
        parser.add_argument("--enqueue", action="store_true",
                            help="queue the sync for a worker (manage.py db_worker) and exit")
        parser.add_argument("--cancel", action="store_true",
                            help="cancel the remote's waiting or running sync and exit")
        parser.add_argument("--wait", action="store_true",
                            help="queue the sync for a worker (as --enqueue) and follow it until it ends, with "
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
        enqueue = enqueue or wait  # --wait follows a queued task: it queues one

        if cancel:
            self._cancel(remote)
            return
        verbosity = 0 if quiet else options["verbosity"]
        display = None if as_json else progress_display(progress, verbosity, self.stdout)
        # Ctrl-C cancels the sync run here (a second one exits at once); on --wait it stops
        # following the queued sync, which goes on.
        with CtrlC() as ctrl_c:
            try:
                # The sync's own info lines repeat the summary: shown with -v 2 only. Log
                # lines written while bars are shown go above them, never into them.
                with quiet_task_logs(options["verbosity"] < 2), logs_above_bars(display):
                    if enqueue:
                        try:
                            task = enqueue_sync(remote)
                        except SyncAlreadyActive as exc:
                            raise CommandError(str(exc)) from None
                        if not wait:
                            self._print_queued(task, as_json, verbosity)
                            return
                        task = follow(task, display, ctrl_c)
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
                    f"{task_href(task)}\n"
                    f"Cancel it with: manage.py sync_remote {remote.name} --cancel (or "
                    f"manage.py task cancel {task.pk})")
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
        self.stdout.write(task_href(task))
        if verbosity > 1:
            self.stderr.write(f"task {task.pk} is {task.state}")

    @staticmethod
    def _json(task: SyncTask) -> str:
        return to_json(task_data(task))

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
            f"({human_size(summary.get('bytes_downloaded', 0))}"
            + (f"; {restored} restored: missing from storage" if restored else "") + "), "
            f"{summary.get('failed', 0)} failed"
            + (f", {deferred} left to download on demand ({remote.policy})." if deferred
               else ".")
        )

    def _cancel(self, remote: Remote) -> None:
        active = SyncTask.objects.filter(remote=remote, state__in=SyncTask.ACTIVE_STATES).first()
        if active is None or not active.cancel(by="manage.py sync_remote --cancel"):
            raise CommandError(f"No sync of {remote.name!r} is waiting or running.")
        self.stdout.write(f"Canceled the sync of {remote.name!r} (task {active.pk}).")
