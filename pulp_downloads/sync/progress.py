"""Progress of a running sync, reported to a callback at intervals."""
from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from asgiref.sync import sync_to_async

from .summary import SyncCanceled

log = logging.getLogger(__name__)


@dataclass
class SyncProgress:
    """Files and bytes done and to do, as reported while a sync runs.

    Counts only grow and never pass their totals: ``bytes_done`` counts each byte received
    once (retries and resumed attempts do not count again); a file that failed counts in
    ``files_failed``, not in ``files_done``. Under ``on_demand``/``streamed`` the files not
    downloaded stay out of ``files_done`` (the summary's ``deferred`` counts them)."""

    files_total: int = 0
    files_done: int = 0
    files_failed: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    stage: str = "manifest"


ProgressCallback = Callable[[SyncProgress], object]


class Reporter:
    """Calls the progress callback every ``interval`` seconds and once at the end.

    A callback raising :class:`SyncCanceled` cancels the sync (the task that created the
    reporter); any other error is logged and reporting goes on.
    """

    def __init__(self, callback: ProgressCallback | None, state: SyncProgress, interval: float):
        self.callback = callback
        self.state = state
        self.interval = interval
        self.canceled: SyncCanceled | None = None
        self._owner = asyncio.current_task()
        self.task = asyncio.ensure_future(self._run()) if callback is not None else None

    async def _call(self) -> None:
        snapshot = SyncProgress(**asdict(self.state))
        try:
            if inspect.iscoroutinefunction(self.callback):
                await self.callback(snapshot)
            else:
                await sync_to_async(self.callback)(snapshot)
        except SyncCanceled as exc:
            if self.canceled is None:
                self.canceled = exc
                if self._owner is not None and asyncio.current_task() is not self._owner:
                    self._owner.cancel()
        except Exception as exc:  # noqa: BLE001 - a report is not worth failing the sync for
            log.warning("progress report failed (%s: %s); the sync goes on",
                        type(exc).__name__, exc)

    async def _run(self) -> None:
        while self.canceled is None:
            await asyncio.sleep(self.interval)
            await self._call()

    async def watch(self, work, summary):
        """Await ``work`` (a coroutine of the task that made this reporter) while reporting;
        stop reporting after it. When a report raised :class:`SyncCanceled`, the work is
        interrupted and :class:`SyncCanceled` carrying ``summary`` is raised."""
        try:
            try:
                return await work
            finally:
                await self.stop()
        except asyncio.CancelledError:
            if self.canceled is None:
                raise
            asyncio.current_task().uncancel()
            raise SyncCanceled(str(self.canceled) or "canceled", summary) from None

    async def stop(self) -> None:
        if self.task is None:
            return
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        if self.canceled is None:
            await self._call()
