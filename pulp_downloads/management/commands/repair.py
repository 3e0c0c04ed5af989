"""``manage.py repair [--remote NAME] [--verify-digests] [--enqueue | --wait] [--json |
--quiet]``: check every Artifact's file and fetch the damaged ones again, here or on a
worker."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from pulp_downloads.management.interrupt import EXIT_INTERRUPTED, CtrlC
from pulp_downloads.management.output import task_data, task_href, to_json
from pulp_downloads.management.progress import (follow, logs_above_bars, progress_display,
                                                quiet_task_logs)
from pulp_downloads.models import Remote, SyncTask
from pulp_downloads.tasks import SyncAlreadyActive, enqueue_repair, run_repair_now


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
        parser.add_argument("--wait", action="store_true",
                            help="queue the repair for a worker (as --enqueue) and follow it until it ends, "
                                 "with the same progress display, summary and exit status as "
                                 "a repair run here")
        output = parser.add_mutually_exclusive_group()
        output.add_argument("--json", action="store_true", dest="as_json",
                            help="print the finished task as JSON (as the REST API shows it)")
        output.add_argument("--quiet", action="store_true",
                            help="no progress and no summary; errors only (exit status 1)")

    def handle(self, *args, remote: str | None, verify_digests: bool, enqueue: bool,
               wait: bool, as_json: bool, quiet: bool, **options) -> None:
        target = None
        if remote is not None:
            target = Remote.objects.filter(name=remote).first()
            if target is None:
                raise CommandError(f"No remote named {remote!r}.")
        enqueue = enqueue or wait  # --wait follows a queued task: it queues one
        display = None if (quiet or as_json or (enqueue and not wait)) else progress_display(
            "auto", options["verbosity"], self.stdout, with_bytes=verify_digests)
        # Ctrl-C cancels a repair run here (what is repaired stays; a second one exits at
        # once); on --wait it stops following the queued repair, which goes on.
        with CtrlC() as ctrl_c:
            try:
                with quiet_task_logs(options["verbosity"] < 2), logs_above_bars(display):
                    if enqueue:
                        task = enqueue_repair(target, verify_digests=verify_digests)
                        if not wait:
                            self.stdout.write(to_json(task_data(task)) if as_json
                                              else task_href(task))
                            return
                        task = follow(task, display, ctrl_c)
                    else:
                        task = run_repair_now(target, verify_digests=verify_digests,
                                              progress=display, stop=ctrl_c)
            except SyncAlreadyActive as exc:
                raise CommandError(str(exc)) from None
            finally:
                if display is not None:
                    display.close()
            if ctrl_c and task.state in SyncTask.ACTIVE_STATES:  # --wait: it goes on
                self.stderr.write(
                    f"Stopped following; the repair goes on on a worker: {task_href(task)}\n"
                    f"Cancel it with: manage.py task cancel {task.pk}")
                raise SystemExit(EXIT_INTERRUPTED)
            if ctrl_c and task.state == SyncTask.State.CANCELED and not enqueue:
                summary = task.summary or {}
                self.stderr.write(
                    f"Canceled: {summary.get('checked', 0)} of {task.files_total} files "
                    f"checked, {summary.get('repaired', 0)} repaired; run it again to go on.")
                raise SystemExit(EXIT_INTERRUPTED)
        if as_json:
            self.stdout.write(to_json(task_data(task)))
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
