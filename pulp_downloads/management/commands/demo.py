"""``manage.py demo``: the whole product on one machine (what ``make run`` runs).

It makes sure an admin user exists, serves the bundled sample repository from a loopback
HTTP server, creates the ``sample`` Remote for it, syncs it with a progress bar, then runs the
web application (uvicorn, ASGI) and a task worker (``db_worker``) until interrupted.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from pulp_downloads.management.interrupt import EXIT_INTERRUPTED
from pulp_downloads.models import Remote
from pulp_downloads.models.task import process_exists

SAMPLE_REPO = Path(__file__).resolve().parents[2] / "fixtures" / "sample_repo"


def wait_for_port(host: str, port: int, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now. ``SO_REUSEADDR`` as servers set it,
    so the connections a just-stopped run left in TIME_WAIT do not count as a user."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Terminated(KeyboardInterrupt):
    """SIGTERM: stop as Ctrl-C would (the children have not been told yet)."""


def _interrupt(signum, frame) -> None:
    raise Terminated


@contextlib.contextmanager
def terminal_foreground():
    """On a terminal, make this process (and the children it starts) the terminal's
    foreground process group while the block runs, as a shell does for a job.

    Under ``make run``, Ctrl-C then reaches the demo and its children but not ``make``, which
    sees the demo end with status 0 and ends with 0 too (instead of dying of the signal).
    Elsewhere (no terminal, or not allowed), nothing changes."""
    try:
        terminal = os.open("/dev/tty", os.O_RDWR)
    except OSError:
        yield
        return
    previous = None
    ttou = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may not
    try:
        previous = os.tcgetpgrp(terminal)
        os.setpgid(0, 0)
        os.tcsetpgrp(terminal, os.getpgrp())
    except OSError:
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            try:
                os.tcsetpgrp(terminal, previous)
            except OSError:
                pass
        signal.signal(signal.SIGTTOU, ttou)
        os.close(terminal)


class Command(BaseCommand):
    help = "Run the demo: admin user, sample upstream, sample remote synced, web app and worker."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 8000)))
        parser.add_argument("--upstream-port", type=int,
                            default=int(os.environ.get("UPSTREAM_PORT", 8001)))
        parser.add_argument("--web-workers", type=int,
                            default=int(os.environ.get("WEB_WORKERS", 2)),
                            help="uvicorn worker processes (default 2: content requests are "
                                 "served by every core)")
        parser.add_argument("--no-serve", action="store_true",
                            help="stop after the sync (do not start the web app and worker)")

    def handle(self, *args, **options) -> None:
        # SIGTERM (systemd, `kill`) stops everything as Ctrl-C does: children included.
        # Either one, at any moment, ends the demo with exit status 0.
        signal.signal(signal.SIGTERM, _interrupt)
        with terminal_foreground():
            try:
                self._run(**options)
            except KeyboardInterrupt:
                self.stdout.write("\nStopped.")

    def _run(self, *, host: str, port: int, upstream_port: int, no_serve: bool,
             web_workers: int, **options) -> None:
        _forget_old_metrics()
        username, password, saved = ensure_admin_user(Path(settings.VAR_DIR))
        for needed in ([upstream_port] if no_serve else [upstream_port, port]):
            if not port_is_free(host, needed):
                raise CommandError(f"port {host}:{needed} is in use; set PORT / UPSTREAM_PORT")
        processes: list[subprocess.Popen] = []
        try:
            upstream = subprocess.Popen(
                [sys.executable, "-m", "http.server", str(upstream_port), "--bind", host,
                 "--directory", str(SAMPLE_REPO)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            processes.append(upstream)
            if not wait_for_port(host, upstream_port):
                raise CommandError("the sample upstream server did not start")
            upstream_url = f"http://{host}:{upstream_port}/PULP_MANIFEST"
            remote = Remote.objects.filter(name="sample").first() or Remote(name="sample")
            remote.url = upstream_url
            remote.save()
            self.stdout.write(f"Sample upstream: {upstream_url}")
            self.stdout.write("Syncing remote 'sample':")
            try:
                call_command("sync_remote", "sample", stdout=self.stdout, stderr=self.stderr)
            except SystemExit as exc:  # Ctrl-C canceled the sync: stop as Ctrl-C does
                if exc.code != EXIT_INTERRUPTED:
                    raise
                raise KeyboardInterrupt from None
            if no_serve:
                return

            base = f"http://{host}:{port}"
            web = subprocess.Popen([sys.executable, "-m", "uvicorn", "settings.asgi:application",
                                    "--host", host, "--port", str(port), "--log-level",
                                    "warning", "--timeout-graceful-shutdown", "10",
                                    "--workers", str(web_workers), "--no-access-log"],
                                   cwd=settings.BASE_DIR)
            processes.append(web)
            worker = subprocess.Popen([sys.executable, "manage.py", "db_worker"],
                                      cwd=settings.BASE_DIR)
            processes.append(worker)
            if not wait_for_port(host, port):
                raise CommandError("the web application did not start")
            if not _worker_started(worker):
                raise CommandError("the worker did not start")
            self.stdout.write(self.style.SUCCESS(
                "\npulp_downloads is running (Ctrl-C stops everything):\n"
                f"  Home:     {base}/\n"
                f"  Admin:    {base}/admin/   ({admin_note(username, password, saved)})\n"
                f"  API:      {base}/api/\n"
                f"  API docs: {base}/api/docs/\n"
                f"  Status:   {base}/status/\n"
                f"  Content:  {base}/content/\n"
                f"  Worker:   manage.py db_worker (pid {worker.pid})\n"
            ))
            self._wait(processes)
        finally:
            # Ctrl-C on the terminal reached the children as well: they are stopping.
            interrupt = sys.exc_info()[1]
            _stop(processes, told=isinstance(interrupt, KeyboardInterrupt)
                  and not isinstance(interrupt, Terminated))

    def _wait(self, processes: list[subprocess.Popen]) -> None:
        """Until Ctrl-C / SIGTERM (a KeyboardInterrupt), or until a process stops by itself."""
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        # Ctrl-C reaches the children too, and they may exit first: give the interrupt of
        # this process a moment to arrive before calling it a crash.
        time.sleep(1.0)
        failed = [" ".join(map(str, p.args[:4])) for p in processes if p.poll() is not None]
        raise CommandError(f"stopped unexpectedly: {', '.join(failed)}")

def ensure_admin_user(var_dir: Path) -> tuple[str, str | None, Path | None]:
    """Create the demo's admin user (``ADMIN_USERNAME``, default ``admin``) once; returns its
    name, the password to print (``None`` when the user existed and keeps its own: a password
    changed in the admin stays, and nobody's session ends), and where the first password is
    saved (``var/admin-password.txt``, mode 0600, generated unless ``ADMIN_PASSWORD`` gives
    one). ``ADMIN_PASSWORD``, when set, is the password from then on."""
    username = os.environ.get("ADMIN_USERNAME", "admin")
    given = os.environ.get("ADMIN_PASSWORD")
    stored = var_dir / "admin-password.txt"
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None and (not given or user.check_password(given)):
        return username, None, None if given else stored
    if given:
        password = given
    elif stored.exists():
        password = stored.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        stored.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(stored, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
    if user is None:
        user = user_model(username=username, is_staff=True, is_superuser=True)
    user.set_password(password)
    user.save()
    return username, password, None if given else stored


def admin_note(username: str, password: str | None, saved: Path | None) -> str:
    """How the admin user logs in, as ``make run`` prints it."""
    note = f"user {username!r}, " + (f"password {password!r}" if password
                                     else "its password unchanged")
    if saved is not None and saved.exists():
        note += f"; first password saved in {saved}"
    return note


def _forget_old_metrics() -> None:
    """Remove the metric files of processes that are gone (an earlier run's), which would
    otherwise linger in the sums; files of live processes stay."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return
    for values in Path(directory).glob("*_*.db"):  # e.g. counter_1234.db
        pid = values.stem.rpartition("_")[2]
        if pid.isdigit() and not process_exists(int(pid)):
            values.unlink(missing_ok=True)


def _worker_started(worker: subprocess.Popen, timeout: float = 60.0) -> bool:
    """Wait until ``worker`` recorded its first heartbeat (it is then past start-up and
    handles Ctrl-C gracefully)."""
    import socket

    from pulp_downloads.models import Worker

    name = f"{socket.gethostname()}:{worker.pid}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and worker.poll() is None:
        if Worker.objects.filter(name=name).exists():
            return True
        time.sleep(0.2)
    return False


def _stop(processes: list[subprocess.Popen], *, told: bool) -> None:
    """Stop the children gracefully: SIGINT (as Ctrl-C), unless they were ``told`` already
    (a second one would make them give up their work at once); SIGTERM to those still
    running after 10 s, SIGKILL 10 s later."""
    running = [process for process in processes if process.poll() is None]
    if not told:
        for process in running:
            process.send_signal(signal.SIGINT)
    for last_resort in (signal.SIGTERM, signal.SIGKILL):
        deadline = time.monotonic() + 10
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        running = [process for process in running if process.poll() is None]
        for process in running:
            process.send_signal(last_resort)
    for process in running:
        process.wait()
