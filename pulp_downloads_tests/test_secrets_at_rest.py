"""Secrets at rest and in logs: the SQLite files are private to their owner, a secret that
cannot be read breaks only its own use, and query strings never reach a log line."""
from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client

from pulp_downloads.download import DownloaderFactory
from pulp_downloads.models import Remote
from pulp_downloads.models.fields import PREFIX, SecretUnreadable, secret_cipher
from pulp_downloads.models.headers import MASK
from pulp_downloads.tasks import run_sync_now

from .upstream import sha256, status_fault

ROOT = Path(__file__).resolve().parent.parent


# --- unreadable secrets break only their own use ------------------------------------------------
def not_utf8_token() -> str:
    """A value the configured key decrypts, to bytes that are not UTF-8."""
    return PREFIX + secret_cipher().encrypt(b"\xff\xfe not text \x80").decode()


def store_raw(pk: int, column: str, value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE pulp_downloads_remote SET {column} = %s WHERE id = %s",
                       [value, pk])


def lists_and_pages_work(make_user, remote: Remote) -> None:
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(make_user("api-root", is_superuser=True))
    listed = api.get("/api/remotes/")
    assert listed.status_code == 200, listed.content[:500]
    assert api.get(f"/api/remotes/{remote.pk}/").status_code == 200
    admin = Client()
    admin.force_login(make_user("root", is_superuser=True, is_staff=True))
    assert admin.get("/admin/pulp_downloads/remote/").status_code == 200
    assert admin.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/").status_code == 200
    out = io.StringIO()
    call_command("remote", "list", stdout=out)
    assert remote.name in out.getvalue()
    call_command("remote", "show", remote.name, stdout=io.StringIO())
    return listed.json()["results"][0]


@pytest.mark.django_db
def test_a_secret_that_decrypts_to_bytes_not_utf8_breaks_only_its_use(make_user):
    remote = Remote.objects.create(name="bad-bytes", url="https://example.test/PULP_MANIFEST",
                                   username="u", password="pw")
    store_raw(remote.pk, "password", not_utf8_token())
    shown = lists_and_pages_work(make_user, remote)
    assert shown["has_password"] is True
    again = Remote.objects.get(pk=remote.pk)
    with pytest.raises(SecretUnreadable, match="password of remote 'bad-bytes'.*not UTF-8"):
        DownloaderFactory(again)
    task = run_sync_now(again)
    assert task.state == "failed" and "password of remote 'bad-bytes'" in task.error


@pytest.mark.django_db
@pytest.mark.parametrize("stored", ["not-utf8", "other-key"])
def test_an_unreadable_header_value_breaks_only_its_use_and_is_kept(make_user, stored):
    remote = Remote.objects.create(name="bad-header", url="https://example.test/PULP_MANIFEST",
                                   headers={"X-Api-Key": "key", "X-Tenant": "blue"})
    other = Fernet(Fernet.generate_key()).encrypt(b"key").decode()
    value = not_utf8_token() if stored == "not-utf8" else PREFIX + other
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers FROM pulp_downloads_remote WHERE id = %s", [remote.pk])
        headers = json.loads(cursor.fetchone()[0])
    store_raw(remote.pk, "headers", json.dumps({**headers, "X-Api-Key": value}))
    shown = lists_and_pages_work(make_user, remote)
    assert shown["headers"] == {"X-Api-Key": MASK, "X-Tenant": MASK}
    again = Remote.objects.get(pk=remote.pk)
    with pytest.raises(SecretUnreadable, match="X-Api-Key header of remote 'bad-header'"):
        DownloaderFactory(again)
    # Saving another change keeps the unreadable value as it was stored.
    again.policy = "streamed"
    again.save()
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers FROM pulp_downloads_remote WHERE id = %s", [remote.pk])
        assert json.loads(cursor.fetchone()[0])["X-Api-Key"] == value


# --- the SQLite files are private -------------------------------------------------------------
def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def migrate(var: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "TEST_DATABASE_NAME")}
    env.update(PULP_DOWNLOADS_VAR_DIR=str(var), PULP_DOWNLOADS_LOG_LEVEL="WARNING")
    done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=lambda: os.umask(0o022))
    assert done.returncode == 0, done.stderr[-3000:]


def test_migrate_creates_the_database_private_and_tightens_an_existing_one(tmp_path):
    var = tmp_path / "var"
    database = var / "db.sqlite3"
    migrate(var)
    assert mode(var) == 0o700 and mode(database) == 0o600
    # Loosened by hand (or made before this rule), with its WAL side files present: the next
    # migrate (as `make run` does) tightens all of them.
    holder = sqlite3.connect(database)
    try:
        holder.execute("PRAGMA journal_mode=WAL")
        holder.execute("CREATE TABLE IF NOT EXISTS probe (x)")
        holder.execute("INSERT INTO probe VALUES (1)")
        holder.commit()
        holder.execute("BEGIN")
        holder.execute("SELECT * FROM probe").fetchall()  # keeps -wal and -shm in place
        side = [Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(path.exists() for path in side)
        for path in (database, *side):
            os.chmod(path, 0o644)
        os.chmod(var, 0o755)
        migrate(var)
        assert mode(var) == 0o700
        assert {path.name: mode(path) for path in (database, *side)} == {
            path.name: 0o600 for path in (database, *side)}
    finally:
        holder.close()


# --- logs never carry query strings -----------------------------------------------------------
class LogLines:
    """Every record of every logger of this process, DEBUG and up, formatted, except the
    access log of the test's upstream servers (theirs, not the app's)."""

    def __init__(self, caplog) -> None:
        self.caplog = caplog

    @property
    def text(self) -> str:
        return "\n".join(self.caplog.handler.format(record) for record in self.caplog.records
                         if record.name != "aiohttp.access")


@pytest.fixture
def every_log_line(caplog):
    app_logger = logging.getLogger("pulp_downloads")  # it does not propagate
    app_logger.addHandler(caplog.handler)
    level = app_logger.level
    app_logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield LogLines(caplog)
    app_logger.removeHandler(caplog.handler)
    app_logger.setLevel(level)


SIGNED = ("SIG-SECRET", "LIST-SECRET")


@pytest.mark.django_db(transaction=True)
def test_query_strings_are_redacted_in_every_log_line_of_a_sync(
        every_log_line, threaded_upstream, other_threaded_upstream):
    files = {"a.bin": b"a" * 2000, "b.bin": b"b" * 3000}
    url = threaded_upstream.add_repo("repo", files) + f"?sig={SIGNED[0]}&expires=1"
    other_threaded_upstream.add_repo("repo", files)
    threaded_upstream.add("repo/mirrors.txt", f"{other_threaded_upstream.url}repo/\n".encode())
    # The manifest fails twice on the primary: a retry, then the mirror serves it.
    threaded_upstream.faults["repo/PULP_MANIFEST"] += [status_fault(503), status_fault(503)]
    remote = Remote.objects.create(
        name="signed", url=url, max_retries=1,
        mirrorlist_url=f"{threaded_upstream.url}repo/mirrors.txt?token={SIGNED[1]}")
    task = run_sync_now(remote)
    assert task.state == "completed", task.error
    served = [path for _, path, _ in other_threaded_upstream.requests]
    assert "repo/PULP_MANIFEST" in served  # the mirror served it, with its query
    text = every_log_line.text
    assert "retrying" in text and "served by mirror" in text and "mirror list" in text
    assert [secret for secret in SIGNED if secret in text] == []
    assert "sig=***" in text and "token=***" in text


@pytest.mark.django_db(transaction=True)
def test_a_failed_signed_download_leaves_no_query_in_logs_or_the_task(
        every_log_line, threaded_upstream):
    data = b"c" * 1000
    threaded_upstream.add("repo/c.bin", data)
    threaded_upstream.files["repo/PULP_MANIFEST"] = f"c.bin,{sha256(data)},{len(data)}\n".encode()
    threaded_upstream.faults["repo/PULP_MANIFEST"] += [status_fault(500)] * 2
    remote = Remote.objects.create(
        name="signed-fail", max_retries=1,
        url=f"{threaded_upstream.url}repo/PULP_MANIFEST?X-Amz-Signature={SIGNED[0]}")
    task = run_sync_now(remote)
    assert task.state == "failed"
    assert SIGNED[0] not in task.error and "X-Amz-Signature=***" in task.error
    assert "retrying" in every_log_line.text
    assert SIGNED[0] not in every_log_line.text
