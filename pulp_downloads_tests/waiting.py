"""Waiting for what a test expects to happen, instead of sleeping and hoping it happened.

A condition is polled until it holds, within a bound so generous that only a broken
behaviour reaches it: a loaded machine makes such a wait longer, never the test red.
"""
from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

#: Seconds a test waits for something that happens within milliseconds when all is well.
PATIENCE = 60.0


async def eventually(condition: Callable[[], Any], what: str, timeout: float = PATIENCE,
                     interval: float = 0.02) -> Any:
    """Return ``condition()``'s first true value (awaited when it is awaitable), polling
    every ``interval`` s; raise ``TimeoutError`` naming ``what`` (what was expected) after
    ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:  # a bound for broken behaviour, not a timing check
            raise TimeoutError(f"{what}: not seen within {timeout:.0f} s")
        await asyncio.sleep(interval)


def wait_for(condition: Callable[[], Any], what: str = "condition",
             timeout: float = PATIENCE, interval: float = 0.05) -> Any:
    """:func:`eventually` for synchronous code (it blocks the calling thread)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:  # a bound for broken behaviour, not a timing check
            raise TimeoutError(f"{what}: not seen within {timeout:.0f} s")
        time.sleep(interval)
