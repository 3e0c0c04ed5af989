"""``make run`` (``manage.py demo``): Ctrl-C typed on its terminal stops the web app, the worker
and the sample upstream, ``make`` exits with status 0, and it starts again at once on the
same ports."""
from __future__ import annotations

import os
import pty
import select
import time
import urllib.request
from pathlib import Path

import pytest

from .upstream import free_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


def _read_until(fd: int, done, timeout: float) -> bytes:
    """Read the terminal until ``done(what was read)`` holds or it closes; what was read."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(out):
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the terminal closed: everything on it ended
                break
            if not chunk:
                break
            out += chunk
    return out


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def test_ctrl_c_on_make_run_exits_0_and_it_starts_again(subprocess_env, tmp_path):
    """Nothing exported: the settings file `make run` writes (here under tmp_path, not the
    checkout's) gives the key, static files and the sample upstream's loopback exception."""
    port, upstream_port = free_port(), free_port()
    env_file = tmp_path / ".env"
    env = dict(subprocess_env, ADMIN_PASSWORD="demo-pass", PULP_DOWNLOADS_ENV_FILE=str(env_file),
               PULP_DOWNLOADS_VAR_DIR=str(tmp_path / "var"), WEB_WORKERS="1")
    for name in ("SECRET_KEY", "DEBUG", "SERVE_STATIC", "PULP_DOWNLOADS_ALLOWED_NETWORKS"):
        env.pop(name, None)
    status_url = f"http://127.0.0.1:{port}/status/"
    for attempt in ("first", "again"):
        pid, terminal = pty.fork()
        if pid == 0:  # a terminal session running `make run`, as a person would
            os.chdir(ROOT)
            os.execvpe("make", ["make", "run", f"PORT={port}",
                                f"UPSTREAM_PORT={upstream_port}"], env)
        try:
            # "is running" is printed once the web app answers and the worker beat.
            output = _read_until(terminal, lambda out: b"is running" in out, timeout=180)
            assert b"is running" in output and _answers(status_url), (
                attempt, output.decode(errors="replace")[-3000:])
            assert _answers(f"http://127.0.0.1:{port}/static/admin/css/base.css")
            os.write(terminal, b"\x03")  # Ctrl-C typed on that terminal
            output += _read_until(terminal, lambda out: False, timeout=60)
            _, status = os.waitpid(pid, 0)
        finally:
            os.close(terminal)
        text = output.decode(errors="replace")
        assert os.waitstatus_to_exitcode(status) == 0, (attempt, text[-3000:])
        assert "is running" in text and "Stopped." in text, (attempt, text[-3000:])
        assert "CommandError" not in text and "Traceback" not in text, text[-3000:]
        assert not _answers(status_url)  # the web app is gone
        # The settings file is written by the first run only, private to its owner.
        assert ("wrote the demo's settings" in text) == (attempt == "first"), text[:3000]
        assert env_file.stat().st_mode & 0o777 == 0o600


def test_the_admin_user_is_created_once_and_keeps_a_changed_password(
        client, tmp_path, monkeypatch):
    """``make run`` creates the admin and prints its password once (saved 0600); a later run
    keeps the user as it is: a password changed in the admin still works and the sessions of
    people logged in go on."""
    from django.contrib.auth import get_user_model

    from pulp_downloads.management.commands.demo import admin_note, ensure_admin_user

    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("ADMIN_USERNAME", raising=False)
    username, password, saved = ensure_admin_user(tmp_path)
    assert username == "admin" and password
    assert saved.read_text().strip() == password
    assert saved.stat().st_mode & 0o777 == 0o600
    assert password in admin_note(username, password, saved)

    user = get_user_model().objects.get(username="admin")
    user.set_password("changed in the admin")
    user.save()
    assert client.login(username="admin", password="changed in the admin")
    assert client.get("/admin/").status_code == 200

    username, again, saved_again = ensure_admin_user(tmp_path)  # the next `make run`
    assert again is None and saved_again == saved
    note = admin_note(username, again, saved_again)
    assert password not in note and str(saved) in note
    assert get_user_model().objects.get(username="admin").check_password("changed in the admin")
    assert client.get("/admin/").status_code == 200  # still logged in
    assert saved.read_text().strip() == password  # the file is not rewritten
