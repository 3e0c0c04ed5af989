"""Splitting long lists for bulk database statements."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db.backends.utils import CursorDebugWrapper, CursorWrapper

#: Rows or parameters per statement: well under every backend's limit on bound variables.
BATCH_SIZE = 500


def chunks(items: Sequence, size: int = BATCH_SIZE) -> Iterator[Sequence]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]


@contextmanager
def unlogged_cursor(connection) -> Iterator[CursorWrapper]:
    """A cursor whose statements stay out of ``connection.queries`` even with ``DEBUG`` on.

    For bulk statements: recording one keeps its whole text and parameters (megabytes over a
    large sync) and, on SQLite, costs one more query to quote the parameters. Statement
    wrappers
    (``connection.execute_wrapper``) and error translation still apply."""
    cursor = connection.cursor()
    if isinstance(cursor, CursorDebugWrapper):
        cursor = connection.make_cursor(cursor.cursor)
    with cursor:
        yield cursor


def insert_rows(connection, table: str, columns: Sequence[str], rows: Sequence[Sequence], *,
                suffix: str = "") -> None:
    """Insert ``rows`` (values in ``columns`` order) into ``table`` with multi-row ``INSERT
    ... VALUES`` statements, each as large as the backend's limit on bound parameters allows
    (up to :data:`BATCH_SIZE` rows). ``suffix`` is SQL appended to each statement (e.g. an
    ``ON CONFLICT`` clause). Runs in the caller's transaction: wrap a call in
    ``transaction.atomic()`` to commit once rather than once per statement. The statements
    are not recorded in ``connection.queries`` (see :func:`unlogged_cursor`)."""
    quote = connection.ops.quote_name
    limit = connection.features.max_query_params or BATCH_SIZE * len(columns)
    per_statement = max(1, min(BATCH_SIZE, limit // len(columns)))
    head = f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) VALUES "
    placeholders = f"({', '.join(['%s'] * len(columns))})"
    with unlogged_cursor(connection) as cursor:
        for chunk in chunks(rows, per_statement):
            cursor.execute(
                head + ", ".join([placeholders] * len(chunk)) + suffix,
                [value for row in chunk for value in row],
            )
