"""A running task's recent throughput, for the rate and time left on its admin page.

The rate is the bytes received over the last :data:`WINDOW` seconds, from samples of the
task's ``bytes_done`` taken each time its page asks for its progress, not the bytes since
the task started: bytes credited at once (a resumed download's first part, files already
stored) and pauses long past do not skew it, so the time left does not jump after a resume.

Samples are kept in Django's cache under the task's id (a process's memory by default; a
shared cache shares them between web processes).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import NamedTuple

from django.core.cache import cache

#: Seconds of samples the rate is computed over.
WINDOW = 10.0
#: Samples closer together than this (seconds) give no rate: too short to mean anything.
MIN_SPAN = 0.5


class Sample(NamedTuple):
    """``done`` bytes had been received at ``at`` (seconds, ``time.time()``)."""

    at: float
    done: int


def recent_rate(samples: Sequence[Sample], now: float, window: float = WINDOW) -> float | None:
    """Bytes per second over the samples of the last ``window`` seconds before ``now``
    (sorted oldest first): from the oldest of them to the newest. ``None`` when fewer than
    two fall in the window or they span less than :data:`MIN_SPAN` seconds; never below 0
    (a count that went back, as when a task restarts, counts as no progress)."""
    recent = [sample for sample in samples if now - window <= sample.at <= now]
    if len(recent) < 2:
        return None
    first, last = recent[0], recent[-1]
    span = last.at - first.at
    if span < MIN_SPAN:
        return None
    return max(last.done - first.done, 0) / span


def time_left(remaining: int, rate: float | None) -> float | None:
    """Seconds until ``remaining`` bytes are in at ``rate``; ``None`` when there is no rate
    (or no progress) to tell, or nothing remains."""
    if not rate or rate <= 0 or remaining <= 0:
        return None
    return remaining / rate


def observe(key: str, done: int, now: float | None = None) -> float | None:
    """Record that ``done`` bytes of task ``key`` are in, and return its :func:`recent_rate`
    (``None`` until a second sample comes)."""
    now = time.time() if now is None else now
    cache_key = f"pulp_downloads:throughput:{key}"
    samples = [Sample(*sample) for sample in cache.get(cache_key, [])
               if now - WINDOW <= sample[0] <= now]
    samples.append(Sample(now, done))
    cache.set(cache_key, [tuple(sample) for sample in samples], timeout=int(WINDOW * 6))
    return recent_rate(samples, now)


def forget(key: str) -> None:
    """Drop the samples of task ``key`` (it ended)."""
    cache.delete(f"pulp_downloads:throughput:{key}")
