"""Ctrl-C in the commands that run or follow a task: the first asks, the second exits.

A command wraps its work in :class:`CtrlC`. The first SIGINT only sets
:attr:`CtrlC.requested`: a task running in this process sees it at its next progress report
(``run_sync_now(..., stop=ctrl_c)``) and ends ``canceled`` as the API's cancel would, so no
``KeyboardInterrupt`` tears through the event loop and its thread pools. The second SIGINT
exits at once with status 130 (what is running is left to the reaper).
"""
from __future__ import annotations

import os
import signal
import threading

#: The exit status of a command stopped by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 128 + signal.SIGINT


class CtrlC:
    """A context manager that handles SIGINT while it is active (in the main thread only;
    elsewhere it does nothing). Truthy once Ctrl-C was pressed; callable, so it can be
    passed where a ``stop() -> bool`` is expected."""

    def __init__(self, again: str = "Interrupted again: exiting now.") -> None:
        self.requested = False
        self.again = again
        self._previous = None
        self._installed = False

    def __call__(self) -> bool:
        return self.requested

    def __bool__(self) -> bool:
        return self.requested

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False

    def _handle(self, signum, frame) -> None:
        # Only a flag and, the second time, a raw write and _exit: nothing here may take a
        # lock the interrupted code could be holding.
        if self.requested:
            os.write(2, f"\n{self.again}\n".encode())
            os._exit(EXIT_INTERRUPTED)
        self.requested = True
