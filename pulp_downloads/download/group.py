"""GroupDownloader: many downloads, bounded concurrency, reported group by group."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from .base import BaseDownloader
from .exceptions import DownloadError, unexpected
from .reporting import must_propagate
from .result import DownloadResult


@dataclass
class GroupReport:
    """The outcome of one group, delivered when its last download finished."""

    key: Any
    results: list[DownloadResult] = field(default_factory=list)
    errors: list[DownloadError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class GroupDownloader:
    """Runs downloads grouped by key (e.g. all files of one content unit).

    At most ``concurrency`` downloads are in progress at a time (the factory's own limit on
    connections applies as well). A group is reported as soon as its last download
    finished; a failed download fails its group only, never the others, whatever it raised
    (an exception that is not a :class:`DownloadError`, even a ``CancelledError`` or another
    ``BaseException`` raised by a callback, becomes a DownloadError in ``errors``). Only
    what stops everything goes through: cancelling the task iterating ``run()`` cancels
    the downloads in progress and raises there; ``KeyboardInterrupt`` and ``SystemExit``
    are not caught::

        group = GroupDownloader(concurrency=20)
        group.add("unit-1", [factory.build(u) for u in urls])
        async for report in group.run():
            ...
    """

    def __init__(self, concurrency: int = 20) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self._groups: list[tuple[Any, list[BaseDownloader]]] = []

    def add(self, key: Any, downloaders: Iterable[BaseDownloader]) -> None:
        """Add a group (before ``run()``)."""
        self._groups.append((key, list(downloaders)))

    async def run(self) -> AsyncIterator[GroupReport]:
        """Yield one :class:`GroupReport` per group, in order of completion."""
        reports: asyncio.Queue[GroupReport] = asyncio.Queue()
        work: asyncio.Queue[tuple[int, BaseDownloader]] = asyncio.Queue()
        remaining: dict[int, int] = {}
        partial: dict[int, GroupReport] = {}
        for index, (key, downloaders) in enumerate(self._groups):
            partial[index] = GroupReport(key)
            remaining[index] = len(downloaders)
            if not downloaders:
                reports.put_nowait(partial.pop(index))
            for downloader in downloaders:
                work.put_nowait((index, downloader))
        total_groups = len(self._groups)
        self._groups = []

        async def worker() -> None:
            while True:
                try:
                    index, downloader = work.get_nowait()
                except asyncio.QueueEmpty:
                    return
                report = partial[index]
                try:
                    report.results.append(await downloader.run())
                except DownloadError as exc:
                    report.errors.append(exc)
                except BaseException as exc:  # noqa: BLE001 - every group is reported, whatever
                    # This worker was cancelled (run() ends), or the process stops: asyncio
                    # raises those two out of the event loop at once, nothing is left waiting.
                    if must_propagate(exc):
                        raise
                    report.errors.append(unexpected(downloader.url, exc))
                remaining[index] -= 1
                if remaining[index] == 0:
                    reports.put_nowait(partial.pop(index))

        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, work.qsize() or 1))]
        try:
            for _ in range(total_groups):
                yield await reports.get()
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def run_all(self) -> list[GroupReport]:
        """Run everything and return all reports."""
        return [report async for report in self.run()]
