"""A database blip does not waste a sync's work: its database steps retry while the database
is away, and the files it validated but could not store are kept for the next sync.

The PostgreSQL tests put a TCP proxy of their own between the app and the server, and cut it
when the sync reaches a chosen point (events, not sleeps); the retry helper and the kept files
are also tested on SQLite, with the database step made to fail.
"""
from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import socket
import threading

import pytest
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError, connection, transaction

from pulp_downloads import dbretry
from pulp_downloads.conf import app_settings
from pulp_downloads.dbretry import aretry_database, retry_database
from pulp_downloads.models import Artifact, Remote
from pulp_downloads.signals import download_finished
from pulp_downloads.storage.batch import ArtifactBatch
from pulp_downloads.storage.kept import kept_files
from pulp_downloads.sync import async_sync_remote

from .upstream import sha256

pytestmark = pytest.mark.django_db(transaction=True)


def mixed_files() -> dict[str, bytes]:
    """Files of each kind a session stores: kept in memory (<= 64 KiB), temporary files, and
    resumable downloads (>= 1 MiB, written under the partials directory)."""
    content = {f"small/{i}.bin": os.urandom(3000 + i) for i in range(8)}
    content.update({f"medium/{i}.bin": os.urandom(100_000 + i) for i in range(4)})
    content.update({f"large/{i}.bin": os.urandom(1_200_000 + i) for i in range(2)})
    return content


def assert_every_artifact_matches_its_file() -> None:
    """Every Artifact's stored file has its row's size and every digest the row records."""
    algorithms = app_settings().allowed_checksums
    artifacts = list(Artifact.objects.all())
    assert artifacts
    for artifact in artifacts:
        with default_storage.open(artifact.file.name, "rb") as fh:
            data = fh.read()
        assert len(data) == artifact.size, artifact.sha256
        for name in algorithms:
            assert hashlib.new(name, data).hexdigest() == getattr(artifact, name), (
                f"{name} of {artifact.sha256}")


@pytest.fixture
def retry_time(settings):
    """``retry_time(seconds)``: set ``DATABASE_RETRY_TIME``."""
    def set_to(seconds: float) -> None:
        settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "DATABASE_RETRY_TIME": seconds}

    return set_to


@pytest.fixture
def quick_backoff(monkeypatch, retry_time):
    """Retries 10 ms apart, for 30 s at most."""
    monkeypatch.setattr(dbretry, "FIRST_DELAY", 0.01)
    monkeypatch.setattr(dbretry, "MAX_DELAY", 0.01)
    retry_time(30)


class LogEvent(logging.Handler):
    """Sets :attr:`seen` when ``logger`` logs a record whose message holds ``text``."""

    def __init__(self, logger: str, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = threading.Event()
        self.logger = logging.getLogger(logger)

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()

    def __enter__(self) -> "LogEvent":
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self)


class Validated:
    """Records the sha256 of each file the sync validated (``download_finished``), and
    calls ``when(count)`` as each is recorded, on the event loop."""

    def __init__(self, when=None) -> None:
        self.sha256s: set[str] = set()
        self.when = when

    async def receiver(self, sender, downloader, result, **kwargs) -> None:
        if downloader.attachment is None:  # the manifest
            return
        self.sha256s.add(result.digests["sha256"])
        if self.when is not None:
            self.when(len(self.sha256s))

    def __enter__(self) -> "Validated":
        download_finished.connect(self.receiver, dispatch_uid=f"validated-{id(self)}")
        return self

    def __exit__(self, *exc) -> None:
        download_finished.disconnect(dispatch_uid=f"validated-{id(self)}")


# --- the retry helper (any database) --------------------------------------------------------
def test_a_lost_connection_is_retried_on_a_new_connection(quick_backoff):
    connections_seen = []

    def step() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        connections_seen.append(connection.connection)
        if len(connections_seen) < 3:
            raise InterfaceError("connection already closed")
        return "done"

    assert retry_database(step, what="a step") == "done"
    assert len(connections_seen) == 3
    first, second, third = connections_seen
    assert first is not second and second is not third  # closed, then opened again


def test_a_locked_database_is_retried(quick_backoff):
    tries = []

    def step() -> int:
        tries.append(1)
        if len(tries) < 4:
            raise OperationalError("database is locked")
        return len(tries)

    assert retry_database(step, what="a step") == 4


def test_a_wrong_statement_is_raised_at_once(quick_backoff):
    tries = []

    def step() -> None:
        tries.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table_here")

    with pytest.raises(Exception) as raised:
        retry_database(step, what="a step")
    assert "no_such_table_here" in str(raised.value)
    assert len(tries) == 1


def test_a_step_inside_the_callers_transaction_is_not_retried(quick_backoff):
    tries = []

    def step() -> None:
        tries.append(1)
        raise OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError), transaction.atomic():
        retry_database(step, what="a step")
    assert len(tries) == 1


def test_a_step_is_given_up_once_the_retry_time_is_spent(monkeypatch, retry_time):
    monkeypatch.setattr(dbretry, "FIRST_DELAY", 0.01)
    retry_time(0.2)
    tries = []

    def step() -> None:
        tries.append(1)
        raise OperationalError("database is locked")

    with LogEvent("pulp_downloads.dbretry", "giving up") as gave_up, \
            pytest.raises(OperationalError, match="locked"):
        retry_database(step, what="a step")
    assert len(tries) >= 2 and gave_up.seen.is_set()


def test_no_retry_time_means_no_retry(retry_time):
    retry_time(0)
    tries = []

    def step() -> None:
        tries.append(1)
        raise OperationalError("database is locked")

    with pytest.raises(OperationalError):
        retry_database(step, what="a step")
    assert len(tries) == 1


@pytest.mark.parametrize("value", [-1, "soon", float("inf")])
def test_a_retry_time_that_is_not_a_number_of_seconds_is_refused(retry_time, value):
    from django.core.exceptions import ImproperlyConfigured

    retry_time(value)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_RETRY_TIME"):
        app_settings()


async def test_an_async_step_is_retried_in_the_database_thread(quick_backoff,
                                                               close_thread_connections):
    threads = []

    def step() -> str:
        threads.append(threading.get_ident())
        if len(threads) < 3:
            raise InterfaceError("connection already closed")
        return "done"

    assert await aretry_database(step, what="a step") == "done"
    assert len(threads) == 3 and len(set(threads)) == 1
    assert threads[0] != threading.get_ident()  # not on the event loop


# --- kept files (any database) --------------------------------------------------------------
async def failing_sync(remote, monkeypatch, files: int) -> set[str]:
    """Sync ``remote``, listing ``files`` files, while every commit finds the database
    locked (retried for 0.2 s) once all of them were downloaded: the sync fails with the
    database error. Returns the sha256s of the files it validated."""
    every_file = threading.Event()

    def locked(batch):
        every_file.wait(30)
        raise OperationalError("database is locked")

    with monkeypatch.context() as patch, \
            Validated(lambda count: count == files and every_file.set()) as validated:
        patch.setattr(ArtifactBatch, "commit", locked)
        with pytest.raises(OperationalError):
            await async_sync_remote(remote)
    assert every_file.is_set()
    return validated.sha256s


async def test_files_validated_by_a_sync_that_could_not_store_them_are_not_downloaded_again(
        upstream, monkeypatch, retry_time, close_thread_connections):
    retry_time(0.2)
    content = mixed_files()
    by_sha = {sha256(data): f"repo/{path}" for path, data in content.items()}
    remote = await Remote.objects.acreate(name="r", url=upstream.add_repo("repo", content))
    validated = await failing_sync(remote, monkeypatch, len(content))
    assert validated == set(by_sha) and await Artifact.objects.acount() == 0
    assert kept_files().sha256s() == validated
    hits = collections.Counter(upstream.hits)

    summary = await async_sync_remote(remote)

    fetched_again = {path for path in content
                     if upstream.hits[f"repo/{path}"] > hits[f"repo/{path}"]}
    assert not fetched_again  # every file had been validated: none is downloaded again
    assert summary.failed == 0 and await Artifact.objects.acount() == len(content)
    assert not kept_files().sha256s()
    await asyncio.to_thread(assert_every_artifact_matches_its_file)


async def test_a_kept_file_that_changed_is_downloaded_again(upstream, monkeypatch, retry_time,
                                                            close_thread_connections):
    retry_time(0.2)
    content = mixed_files()
    by_sha = {sha256(data): path for path, data in content.items()}
    remote = await Remote.objects.acreate(name="r", url=upstream.add_repo("repo", content))
    await failing_sync(remote, monkeypatch, len(content))
    kept = kept_files()
    changed, truncated = sorted(kept.sha256s())[:2]
    with open(kept.path(changed), "r+b") as fh:  # same size, another byte
        first = fh.read(1)
        fh.seek(0)
        fh.write(bytes([first[0] ^ 0xFF]))
    os.truncate(kept.path(truncated), 10)
    hits = collections.Counter(upstream.hits)

    with LogEvent("pulp_downloads.storage.kept", "does not match") as refused:
        summary = await async_sync_remote(remote)

    assert refused.seen.is_set()
    for sha in (changed, truncated):
        path = f"repo/{by_sha[sha]}"
        assert upstream.hits[path] == hits[path] + 1
    assert summary.failed == 0 and await Artifact.objects.acount() == len(content)
    await asyncio.to_thread(assert_every_artifact_matches_its_file)


# --- PostgreSQL through a proxy the test cuts -----------------------------------------------
class CuttableProxy:
    """A TCP forwarder from 127.0.0.1:``port`` to ``target``. :meth:`cut` closes every
    connection through it and refuses new ones (accepted, then closed at once) until
    :meth:`restore`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.refused = 0
        self._cut = False
        self._stopped = False
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def stop(self) -> None:
        self._stopped = True
        self.cut()
        self._thread.join(10)
        self.listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            try:
                server = None if self._cut else socket.create_connection(self.target, 5)
            except OSError:
                server = None
            with self._lock:
                if server is None or self._cut:
                    self.refused += 1
                    for sock in (client, server):
                        if sock is not None:
                            _close(sock)
                    continue
                server.settimeout(None)
                self._open |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._open -= {source, sink}
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the thread reading it
    except OSError:
        pass
    sock.close()


@pytest.fixture
def db_proxy(transactional_db):
    """This thread's database connection goes through a :class:`CuttableProxy`."""
    params = connection.settings_dict
    saved = params["HOST"], params["PORT"]
    proxy = CuttableProxy((params["HOST"] or "127.0.0.1", int(params["PORT"] or 5432)))
    connection.close()
    params["HOST"], params["PORT"] = "127.0.0.1", proxy.port
    try:
        yield proxy
    finally:
        proxy.restore()
        connection.close()
        params["HOST"], params["PORT"] = saved
        proxy.stop()


def restore_when(proxy: CuttableProxy, event: threading.Event, outage: float) -> threading.Thread:
    """A thread restoring ``proxy`` ``outage`` seconds after ``event`` (or after a minute
    without it: the test then fails on the event not seen)."""
    def run() -> None:
        event.wait(60)
        if event.is_set():
            threading.Event().wait(outage)  # the outage lasts this long
        proxy.restore()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.postgres  # SQLite has no server to lose
def test_a_sync_outlives_a_database_outage(db_proxy, threaded_upstream, retry_time):
    from pulp_downloads.tasks import run_sync_now

    retry_time(60)
    content = mixed_files()
    remote = Remote.objects.create(name="r", url=threaded_upstream.add_repo("repo", content))

    def cut_after_some(count: int) -> None:
        if count == 4:  # the others are stored after the cut
            db_proxy.cut()

    with LogEvent("pulp_downloads.dbretry", "database unavailable") as retrying, \
            Validated(cut_after_some):
        restorer = restore_when(db_proxy, retrying.seen, outage=2.0)
        task = run_sync_now(remote)
        restorer.join(70)

    assert retrying.seen.is_set() and db_proxy.refused > 0  # the sync met the outage
    assert task.state == "completed", task.error
    assert task.summary["downloaded"] == len(content) and task.summary["failed"] == 0
    assert Artifact.objects.count() == len(content)
    assert_every_artifact_matches_its_file()


@pytest.mark.postgres
def test_a_sync_failing_on_a_long_outage_leaves_its_validated_files_to_the_next(
        db_proxy, threaded_upstream, retry_time):
    from pulp_downloads.tasks import run_sync_now

    retry_time(1)
    content = mixed_files()
    by_sha = {sha256(data): f"repo/{path}" for path, data in content.items()}
    remote = Remote.objects.create(name="r", url=threaded_upstream.add_repo("repo", content))

    def cut_after_all(count: int) -> None:
        if count == len(content):  # the last one cannot be stored
            db_proxy.cut()

    with LogEvent("pulp_downloads.storage.session", "for the next sync") as kept, \
            Validated(cut_after_all) as validated:
        restorer = restore_when(db_proxy, kept.seen, outage=0)
        first = run_sync_now(remote)
        restorer.join(70)

    assert kept.seen.is_set()
    assert first.state == "failed"
    assert first.error.startswith("The database was unavailable during the sync")
    stored_by_first = set(Artifact.objects.values_list("sha256", flat=True))
    assert validated.sha256s == set(by_sha) and validated.sha256s - stored_by_first
    hits = collections.Counter(threaded_upstream.hits)

    second = run_sync_now(remote)

    assert second.state == "completed", second.error
    fetched = {path for path in by_sha.values() if threaded_upstream.hits[path] > hits[path]}
    assert not fetched  # every file had been validated: none is downloaded again
    assert Artifact.objects.count() == len(content)
    assert_every_artifact_matches_its_file()
