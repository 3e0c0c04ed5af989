"""The rate and time left on a task's page come from its recent throughput, not from the
bytes since it started: a resume (bytes credited at once) does not make them jump."""
from __future__ import annotations

import pytest

from pulp_downloads.admin.throughput import (
    WINDOW,
    Sample,
    forget,
    observe,
    recent_rate,
    time_left,
)

MB = 1_000_000


def steady(start: float, end: float, rate: int, done: int = 0, step: float = 1.0):
    """Samples every ``step`` s from ``start`` to ``end`` at ``rate`` bytes/s from ``done``."""
    samples, at = [], start
    while at <= end:
        samples.append(Sample(at, int(done + (at - start) * rate)))
        at += step
    return samples


def test_rate_is_the_bytes_of_the_recent_window_over_its_span():
    samples = steady(0, 30, 2 * MB)
    assert recent_rate(samples, now=30) == pytest.approx(2 * MB)


def test_a_resume_crediting_bytes_at_once_leaves_the_rate_once_out_of_the_window():
    # A resumed sync credits 500 MB already held at t=0, then downloads 1 MB/s.
    samples = [Sample(0, 0), *steady(0.5, 60, MB, done=500 * MB)]
    since_start = samples[-1].done / samples[-1].at
    assert since_start > 9 * MB  # what "bytes since start" says: nine times too fast
    assert recent_rate(samples, now=60) == pytest.approx(MB)
    remaining = 100 * MB
    assert time_left(remaining, recent_rate(samples, now=60)) == pytest.approx(100)


def test_a_slowdown_shows_within_the_window():
    samples = steady(0, 50, 4 * MB) + steady(51, 80, MB, done=200 * MB)
    assert recent_rate(samples, now=80) == pytest.approx(MB, rel=0.01)


def test_no_rate_from_one_sample_or_too_short_a_span():
    assert recent_rate([], now=10) is None
    assert recent_rate([Sample(9, 100)], now=10) is None
    assert recent_rate([Sample(9.8, 100), Sample(10, 200)], now=10) is None
    # Samples older than the window do not count.
    assert recent_rate([Sample(0, 0), Sample(10 + WINDOW, 100)], now=10 + WINDOW) is None


def test_a_stall_is_rate_0_and_no_time_left():
    samples = [Sample(at, 5 * MB) for at in range(20)]
    assert recent_rate(samples, now=19) == 0
    assert time_left(MB, 0) is None and time_left(MB, None) is None
    assert time_left(0, MB) is None


def test_a_count_that_went_back_counts_as_no_progress():
    assert recent_rate([Sample(0, 10 * MB), Sample(5, 2 * MB)], now=5) == 0


def test_observe_keeps_samples_per_task_and_forget_drops_them():
    forget("task-a")
    forget("task-b")
    assert observe("task-a", 0, now=1000.0) is None  # one sample: no rate yet
    assert observe("task-b", 0, now=1000.0) is None
    assert observe("task-a", 3 * MB, now=1002.0) == pytest.approx(1.5 * MB)
    assert observe("task-b", MB, now=1002.0) == pytest.approx(0.5 * MB)
    # Samples past the window are dropped: the rate is that of the last seconds only.
    later = 1000.0 + WINDOW
    observe("task-a", 3 * MB, now=later + 1)  # the sample of 1000.0 leaves the window
    assert observe("task-a", 4 * MB, now=later + 2) == pytest.approx(
        (4 * MB - 3 * MB) / (later + 2 - 1002.0))  # from the sample of 1002.0
    forget("task-a")
    assert observe("task-a", 9 * MB, now=1100.0) is None
    forget("task-a")
    forget("task-b")
