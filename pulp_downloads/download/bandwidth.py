"""Bandwidth caps: bytes per second shared by many downloads (any thread, any loop)."""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable

#: The smallest piece a capped download reads at once.
MIN_PIECE = 16 * 1024
#: A capped download reads pieces of about this many seconds of its cap, so it never waits
#: long between two reads of its connection.
PIECE_SECONDS = 0.125


class BandwidthCap:
    """Lets at most ``rate`` bytes per second through, summed over every caller.

    Callers report each piece of body they received with :meth:`take`, which returns when
    the cap allows it: the pieces get consecutive slots of ``len(piece) / rate`` seconds, so
    the average over any few seconds stays at or under ``rate`` however many downloads share
    the cap. ``rate=None`` (or 0) means no cap.

    ``clock`` (seconds, monotonic) and ``sleep`` are the time the cap keeps and waits in:
    tests give their own, to see the waits asked for without spending them.
    """

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        self.rate = float(rate) if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    @property
    def piece(self) -> int | None:
        """How many bytes a download under this cap should read at a time (``None``: any)."""
        if not self.rate:
            return None
        return max(MIN_PIECE, int(self.rate * PIECE_SECONDS))

    async def take(self, count: int) -> None:
        """Return once ``count`` more bytes fit under the cap."""
        if not self.rate or count <= 0:
            return
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + count / self.rate
        if slot > now:
            await self._sleep(slot - now)


class BandwidthCaps:
    """Several caps that all apply (a remote's own, and the whole process's)."""

    def __init__(self, *caps: BandwidthCap) -> None:
        self.caps = tuple(cap for cap in caps if cap.rate)

    def __bool__(self) -> bool:
        return bool(self.caps)

    @property
    def piece(self) -> int | None:
        """The piece size of the tightest cap (``None`` when nothing is capped)."""
        pieces = [cap.piece for cap in self.caps if cap.piece is not None]
        return min(pieces) if pieces else None

    async def take(self, count: int) -> None:
        for cap in self.caps:
            await cap.take(count)


_process_caps: dict[float, BandwidthCap] = {}
_process_lock = threading.Lock()


def process_cap(rate: float | None) -> BandwidthCap:
    """The cap shared by every download of this process at ``rate`` bytes/s (one object per
    rate, so every factory built with the same site setting shares it)."""
    if not rate:
        return BandwidthCap(None)
    with _process_lock:
        cap = _process_caps.get(float(rate))
        if cap is None:
            cap = _process_caps[float(rate)] = BandwidthCap(rate)
        return cap
