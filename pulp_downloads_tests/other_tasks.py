"""A task that is not a sync or a repair, for the worker-log tests: the worker keeps
django-tasks' own log lines for it."""
from __future__ import annotations

from django_tasks import task


@task()
def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b
