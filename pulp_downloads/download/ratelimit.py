"""A request-rate limiter shared by every downloader of a factory (any thread, any loop)."""
from __future__ import annotations

import asyncio
import threading
import time


class RateLimiter:
    """Spaces requests at least ``1 / rate`` seconds apart; ``rate=None`` means unlimited."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    async def wait(self) -> None:
        """Return when the caller may send its next request."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        delay = slot - now
        if delay > 0:
            await asyncio.sleep(delay)
