"""How the commands that run or follow a task show its progress.

On a terminal, tqdm bars (files, and bytes when the task counts them); elsewhere a plain line
every few seconds. While bars are shown, :func:`logs_above_bars` sends every log line that
would go to the terminal through ``tqdm.write``: the bars are cleared, the line is written
on a line of its own, and the bars are drawn again below it. So a log line never shares a
line with a bar.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Protocol, TextIO

from pulp_downloads.models import SyncTask
from pulp_downloads.sizes import human_size
from pulp_downloads.sync import SyncProgress

__all__ = ["Display", "LineProgress", "TerminalProgress", "follow", "logs_above_bars",
           "progress_display", "quiet_task_logs"]


class Display(Protocol):
    """Something that shows progress reports, then is closed once."""

    def __call__(self, state: SyncProgress) -> None: ...

    def close(self) -> None: ...


class TerminalProgress:
    """tqdm bars on a terminal: files, and bytes unless ``with_bytes`` is false (a repair
    that checks sizes only reads no byte: a bar of "0 bytes of 0 bytes" would say nothing)."""

    def __init__(self, stream: TextIO, with_bytes: bool = True) -> None:
        from tqdm import tqdm

        self.bars = [tqdm(total=0, unit="file", desc="files", file=stream, position=0,
                          dynamic_ncols=True)]
        if with_bytes:
            self.bars.append(tqdm(total=0, unit="B", unit_scale=True, unit_divisor=1000,
                                  desc="bytes", file=stream, position=1, dynamic_ncols=True))

    def __call__(self, state: SyncProgress) -> None:
        counts = ((state.files_done, state.files_total), (state.bytes_done, state.bytes_total))
        for bar, (done, total) in zip(self.bars, counts):
            if bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars:
            bar.close()


class LineProgress:
    """A plain line every ``interval`` seconds (logs, pipes, CI); sizes through
    :func:`~pulp_downloads.sizes.human_size`, left out when the task counts no bytes."""

    def __init__(self, write: Callable[[str], object], interval: float = 5.0,
                 with_bytes: bool = True) -> None:
        self.write = write
        self.interval = interval
        self.with_bytes = with_bytes
        self.last = 0.0
        self.unwritten: SyncProgress | None = None

    def __call__(self, state: SyncProgress) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line(state)
            self.unwritten = None
        else:
            self.unwritten = state

    def _line(self, state: SyncProgress) -> None:
        failed = f" ({state.files_failed} failed)" if state.files_failed else ""
        sizes = (f", {human_size(state.bytes_done)} of {human_size(state.bytes_total)}"
                 if self.with_bytes and state.bytes_total else "")
        self.write(f"progress: {state.files_done}/{state.files_total} files{failed}{sizes}")

    def close(self) -> None:
        if self.unwritten is not None:  # the final state, so the last line is the truth
            self._line(self.unwritten)


def progress_display(mode: str, verbosity: int, stdout, with_bytes: bool = True
                     ) -> Display | None:
    """What shows a task's progress: bars on a terminal (``auto``) or with ``bar``, plain
    lines on ``stdout`` otherwise, nothing with ``none`` or verbosity 0."""
    if mode == "none" or verbosity == 0:
        return None
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        return TerminalProgress(sys.stderr, with_bytes=with_bytes)
    return LineProgress(lambda text: stdout.write(text), with_bytes=with_bytes)


class _AboveBars(logging.Handler):
    """Writes what ``original`` (a handler writing to the terminal) would, through
    ``tqdm.write``, with its level, filters and formatter."""

    def __init__(self, original: logging.StreamHandler) -> None:
        super().__init__(original.level)
        self.original = original
        self.filters = list(original.filters)
        self.setFormatter(original.formatter)

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=self.original.stream)
        except Exception:  # noqa: BLE001 - as logging.StreamHandler does
            self.handleError(record)


def _writes_to_terminal(handler: logging.Handler) -> bool:
    terminal = {sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__}
    return (isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
            and getattr(handler, "stream", None) in terminal)


@contextlib.contextmanager
def logs_above_bars(display: Display | None) -> Iterator[None]:
    """While ``display`` shows bars, every handler of every logger that writes to stdout or
    stderr writes through ``tqdm.write`` instead (as ``tqdm.contrib.logging``'s
    ``logging_redirect_tqdm``, for all loggers, keeping each handler's level); file
    handlers are left alone. Without bars, nothing changes."""
    if not isinstance(display, TerminalProgress):
        yield
        return
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)]
    swapped = []
    for logger in loggers:
        if any(_writes_to_terminal(handler) for handler in logger.handlers):
            swapped.append((logger, logger.handlers))
            logger.handlers = [_AboveBars(handler) if _writes_to_terminal(handler) else handler
                               for handler in logger.handlers]
    try:
        yield
    finally:
        for logger, handlers in swapped:
            logger.handlers = handlers


@contextlib.contextmanager
def quiet_task_logs(quiet: bool) -> Iterator[None]:
    """With ``quiet``, the sync's and the repair's own info lines (``pulp_downloads.sync``,
    which repeat the summary the command prints) are not shown; warnings still are."""
    logger = logging.getLogger("pulp_downloads.sync")
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def follow(task: SyncTask, display: Display | None, stop: Callable[[], bool],
           interval: float = 0.5) -> SyncTask:
    """Watch a queued task until it ends (or until ``stop()``), showing its progress on
    ``display``; returns the task as last read."""
    while not stop():
        task.refresh_from_db()
        if display is not None:
            display(SyncProgress(
                files_total=task.files_total, files_done=task.files_done,
                files_failed=task.files_failed, bytes_total=task.bytes_total,
                bytes_done=task.bytes_done, stage=task.state))
        if task.state not in SyncTask.ACTIVE_STATES:
            return task
        time.sleep(interval)
    task.refresh_from_db()
    return task
