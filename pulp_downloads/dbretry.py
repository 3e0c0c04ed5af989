"""Database steps that outlive a short outage: retried with backoff when the connection is lost.

A sync's database steps (planning, recording its ContentUnits, journaling and committing each
batch of Artifacts, linking units, recording failures) are idempotent: run again after a
failure whose outcome is unknown (the connection dropped before COMMIT was answered), each
leaves the database as one successful run would. They run through :func:`retry_database`
(from the thread doing database work) or :func:`aretry_database` (from the event loop).

On a lost connection (see :func:`is_unavailable`) the broken connections of the thread are
closed, so that the next try connects again, and the step is tried again after 0.5 s, 1 s,
2 s, ... (at most :data:`MAX_DELAY` apart) until ``PULP_DOWNLOADS['DATABASE_RETRY_TIME']``
seconds (default 60; 0: no retry) have passed since the first failure; then the last error
is raised. A step running inside a transaction opened by its caller is not retried: that
transaction is lost with the connection, only its owner can start it again.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from asgiref.sync import sync_to_async
from django.db import DatabaseError, InterfaceError, OperationalError, connections

from .conf import app_settings

log = logging.getLogger(__name__)

#: The errors a lost or busy database raises (Django's wrappers of the driver's errors).
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
#: The first pause before a retry (seconds); each next one doubles, up to :data:`MAX_DELAY`.
FIRST_DELAY = 0.5
MAX_DELAY = 8.0

T = TypeVar("T")


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database is unreachable or busy (worth trying again), rather
    than that the statement is wrong: any ``InterfaceError``; an ``OperationalError`` from
    PostgreSQL (lost connection, refused connection, server shutting down, deadlock); from
    SQLite only "database is locked"/"busy" (its other operational errors, such as a missing
    table, do not go away)."""
    if isinstance(exc, InterfaceError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    if connections["default"].vendor == "sqlite":
        message = str(exc).lower()
        return "locked" in message or "busy" in message
    return True


def close_broken_connections() -> None:
    """Close this thread's database connections (outside a transaction), so that the next
    query opens a new one. Errors while closing a connection that is already dead are
    ignored."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        try:
            connection.close()
        except DatabaseError:  # close() forgets the connection all the same
            pass


def retry_time() -> float:
    """``PULP_DOWNLOADS['DATABASE_RETRY_TIME']``: seconds a database step is retried for."""
    return app_settings().database_retry_time


def _in_transaction() -> bool:
    return any(connection.in_atomic_block
               for connection in connections.all(initialized_only=True))


def _delays() -> Iterator[float]:
    for attempt in itertools.count():
        yield min(FIRST_DELAY * 2 ** min(attempt, 16), MAX_DELAY)


class _Retries:
    """The retry decision for one step: how long to wait after a failure, or ``None`` to
    give up (and re-raise)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.deadline: float | None = None
        self.delays = _delays()
        self.count = 0

    def after(self, exc: BaseException) -> float | None:
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + retry_time()
        remaining = self.deadline - now
        if remaining <= 0:
            if self.count:
                log.warning("%s: database still unavailable after %d retries; giving up (%s)",
                            self.what, self.count, exc)
            return None
        self.count += 1
        delay = min(next(self.delays), remaining)
        log.warning("%s: database unavailable (%s); retry %d in %.1f s", self.what,
                    str(exc).strip() or type(exc).__name__, self.count, delay)
        return delay


def _attempt(func: Callable[..., T], args, kwargs) -> tuple[bool, T | BaseException]:
    """Run ``func`` once in this thread: ``(True, result)``, or ``(False, error)`` for an
    error worth retrying (this thread's broken connections then closed); other errors, and
    any error inside a caller's transaction, are raised."""
    try:
        return True, func(*args, **kwargs)
    except DATABASE_UNAVAILABLE as exc:
        if not is_unavailable(exc) or _in_transaction():
            raise
        close_broken_connections()
        return False, exc


def retry_database(func: Callable[..., T], *args, what: str, **kwargs) -> T:
    """``func(*args, **kwargs)``, a database step that is safe to repeat, run in this thread
    and retried with backoff while the database is unavailable (see the module docstring).
    ``what`` names the step in log records. Raises the step's error once the retry time is
    spent, or at once when it is not a connection problem."""
    retries = _Retries(what)
    while True:
        ok, outcome = _attempt(func, args, kwargs)
        if ok:
            return outcome
        delay = retries.after(outcome)
        if delay is None:
            raise outcome
        time.sleep(delay)


async def aretry_database(func: Callable[..., T], *args, what: str, **kwargs) -> T:
    """As :func:`retry_database`, from the event loop: each try runs through
    ``sync_to_async`` (the thread that owns the database connection, which is closed there
    on failure), and the pauses between tries are spent on the loop, leaving that thread
    free for other database work (progress reports) meanwhile."""
    retries = _Retries(what)
    while True:
        ok, outcome = await sync_to_async(_attempt)(func, args, kwargs)
        if ok:
            return outcome
        delay = retries.after(outcome)
        if delay is None:
            raise outcome
        await asyncio.sleep(delay)
