"""``manage.py repair``: check every Artifact's file and fetch the damaged ones again."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from pulp_downloads.management.interrupt import EXIT_INTERRUPTED, CtrlC
from pulp_downloads.models import Remote, SyncTask
from pulp_downloads.tasks import SyncAlreadyActive, enqueue_repair, run_repair_now

from .sync_remote import progress_display, task_json


class Command(BaseCommand):
    help = ("Check that every Artifact's file is in storage with its size (and, with "
            "--verify-digests, its digests); fetch missing or corrupt files again from the "
            "remotes that list them. Exits non-zero when some file could not be repaired.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--remote", metavar="NAME",
                            help="only the Artifacts of this remote's content (default: all)")
        parser.add_argument("--verify-digests", action="store_true",
                            help="read every file and compare all its digests (slow: every "
                                 "byte is hashed, on a thread per core)")
        parser.add_argument("--enqueue", action="store_true",
                            help="queue the repair for a worker (manage.py db_worker) and "
                                 "print the task's href")
        parser.add_argument("--json", action="store_true", dest="as_json",
                            help="print the finished task as JSON (as the REST API shows it)")
        parser.add_argument("--quiet", action="store_true",
                            help="no progress and no summary; errors only (exit status 1)")

    def handle(self, *args, remote: str | None, verify_digests: bool, enqueue: bool,
               as_json: bool, quiet: bool, **options) -> None:
        target = None
        if remote is not None:
            target = Remote.objects.filter(name=remote).first()
            if target is None:
                raise CommandError(f"No remote named {remote!r}.")
        try:
            if enqueue:
                task = enqueue_repair(target, verify_digests=verify_digests)
                self.stdout.write(task_json(task) if as_json
                                  else reverse("task-detail", kwargs={"pk": task.pk}))
                return
            display = None if (quiet or as_json) else progress_display(
                "auto", options["verbosity"], self.stdout)
            # Ctrl-C cancels the repair (what is repaired stays); a second one exits at once.
            with CtrlC() as ctrl_c:
                try:
                    task = run_repair_now(target, verify_digests=verify_digests,
                                          progress=display, stop=ctrl_c)
                finally:
                    if display is not None:
                        display.close()
                if ctrl_c and task.state == SyncTask.State.CANCELED:
                    summary = task.summary or {}
                    self.stderr.write(
                        f"Canceled: {summary.get('checked', 0)} of {task.files_total} files "
                        f"checked, {summary.get('repaired', 0)} repaired; run it again to go on.")
                    raise SystemExit(EXIT_INTERRUPTED)
        except SyncAlreadyActive as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(task_json(task))
        elif not quiet:
            summary = task.summary or {}
            self.stdout.write(
                f"repair{f' of {remote}' if remote else ''}: {summary.get('checked', 0)} "
                f"checked, {summary.get('missing', 0)} missing, {summary.get('corrupt', 0)} "
                f"corrupt, {summary.get('repaired', 0)} repaired, "
                f"{summary.get('unrepairable', 0)} unrepairable.")
        if task.state != SyncTask.State.COMPLETED or task.failures:
            lines = [f"Repair {task.state}: {task.error}"]
            for failure in task.failures[:20]:
                lines.append(f"  {failure['file']} ({failure['problem']}): {failure['error']}")
            raise CommandError("\n".join(lines))
