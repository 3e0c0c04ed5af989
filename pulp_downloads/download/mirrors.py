"""Mirrors of a remote: which base URLs may serve a file, which are healthy, and which are
fast."""
from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from .exceptions import redact_url

log = logging.getLogger(__name__)


def base_of(url: str) -> str:
    """The directory part of ``url``, ending in ``/``."""
    return url if url.endswith("/") else url.rsplit("/", 1)[0] + "/"


def parse_mirrorlist(text: str) -> list[str]:
    """Base URLs from a mirror list: one per line, blank lines and ``#`` comments ignored.

    Lines that are not http(s) base URLs are skipped (one warning counts them). Lines are
    taken one at a time, so memory grows with the URLs kept, not with the lines read.
    """
    mirrors: list[str] = []
    ignored, first_ignored = 0, 0
    for number, raw in enumerate(io.StringIO(text), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            parts = urlsplit(line)
            parts.port  # noqa: B018 - a malformed port raises here
        except ValueError:
            parts = None
        if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
                or "@" in parts.netloc):
            ignored += 1
            first_ignored = first_ignored or number
            continue
        mirrors.append(line if line.endswith("/") else line + "/")
    if ignored:
        log.warning("mirror list: %d line(s) ignored (the first: line %d): not an http(s) "
                    "base URL", ignored, first_ignored)
    return mirrors


#: Most mirrors a remote has, from its configuration and its mirror list together: a list
#: with more (a Metalink may name hundreds of thousands) is cut to its first ones.
MAX_MIRRORS = 1000
#: Weight of the newest measurement in a base's throughput (an exponential moving average).
SPEED_WEIGHT = 0.3
#: New downloads are spread over this many of the fastest healthy bases...
SPREAD = 3
#: ... among those at least this fraction as fast as the fastest.
SPREAD_WITHIN = 0.5


class MirrorSet:
    """The primary base URL, its mirrors, and each one's health and speed (thread-safe).

    With ``ranking`` (the default), the healthy bases are ordered by measured throughput
    (bytes per second of whole downloads, request to last byte; a base not measured yet
    counts as fast, so it gets tried), and successive downloads start at each of the few
    fastest in turn, so they spread instead of all starting at one base. Without it, the
    primary comes first and the mirrors follow in their configured order. Unhealthy bases
    (after a server fault) come last, until their cool-down ends.

    Speeds and cool-downs are measured in ``clock``'s seconds (monotonic; tests give their
    own, so that which base is fast does not depend on how busy the machine is).
    """

    def __init__(self, primary_base: str, mirrors: list[str], cooldown: float, *,
                 ranking: bool = True, max_mirrors: int = MAX_MIRRORS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        #: The time of :meth:`record`'s measurements and of the cool-downs.
        self.clock = clock
        self.primary = base_of(primary_base)
        self.max_mirrors = max_mirrors
        self._mirrors: list[str] = []
        self._known: set[str] = {self.primary}
        self.cooldown = cooldown
        self.ranking = ranking
        self._unhealthy_until: dict[str, float] = {}
        self._speed: dict[str, float] = {}
        self._turn = 0
        self._lock = threading.Lock()
        self.add(mirrors)

    def add(self, mirrors: list[str]) -> None:
        """Add mirror base URLs in their order (duplicates and the primary itself are
        ignored), up to ``max_mirrors`` (:data:`MAX_MIRRORS`) mirrors in all; the rest are
        left out with a warning naming the cap. A ``file://`` mirror of an http(s) primary,
        or an http(s) mirror of a ``file://`` one, is left out with a warning: one
        downloader serves every candidate of a URL, so it could never be used. Linear in
        ``len(mirrors)``."""
        left_out = other_kind = 0
        local = self.primary.startswith("file:")
        with self._lock:
            for mirror in mirrors:
                mirror = mirror if mirror.endswith("/") else mirror + "/"
                if mirror in self._known:
                    continue
                if mirror.startswith("file:") != local:
                    other_kind += 1
                    continue
                if len(self._mirrors) >= self.max_mirrors:
                    left_out += 1
                    continue
                self._known.add(mirror)
                self._mirrors.append(mirror)
        if left_out:
            log.warning("%d mirror(s) left out: a remote uses at most %d mirrors "
                        "(MAX_MIRRORS)", left_out, self.max_mirrors)
        if other_kind:
            log.warning("%d mirror(s) left out: a file:// mirror cannot serve an http(s) URL, "
                        "nor the reverse", other_kind)

    @property
    def bases(self) -> list[str]:
        return [self.primary, *self._mirrors]

    def candidates(self, url: str) -> list[str]:
        """URLs to try for ``url``: healthy bases first (primary first), then unhealthy ones.

        A URL outside the primary base has no mirrors: it is its own only candidate.
        """
        if not url.startswith(self.primary):
            return [url]
        relative = url[len(self.primary):]
        now = self.clock()
        with self._lock:
            healthy = [b for b in self.bases if self._unhealthy_until.get(b, 0) <= now]
            sick = [b for b in self.bases if self._unhealthy_until.get(b, 0) > now]
            if self.ranking and len(healthy) > 1:
                healthy = self._ranked(healthy)
        return [base + relative for base in healthy + sick]

    def _ranked(self, healthy: list[str]) -> list[str]:
        """``healthy`` fastest first, then rotated within the top few (lock held)."""
        known = [self._speed[b] for b in healthy if b in self._speed]
        optimistic = max(known, default=1.0) * 2  # try what was never measured
        ranked = sorted(healthy, key=lambda b: -self._speed.get(b, optimistic))
        best = self._speed.get(ranked[0], optimistic)
        top = [b for b in ranked[:SPREAD] if self._speed.get(b, optimistic) >= best * SPREAD_WITHIN]
        start = self._turn % len(top)  # the first download starts at the primary
        self._turn += 1
        return top[start:] + top[:start] + ranked[len(top):]

    def record(self, candidate: str, size: int, seconds: float) -> None:
        """A download of ``size`` bytes from ``candidate`` took ``seconds`` (whole, in
        :attr:`clock`'s seconds)."""
        base = self.base_for(candidate)
        if base is None or seconds <= 0:
            return
        speed = size / seconds if size else 1.0 / seconds
        with self._lock:
            old = self._speed.get(base)
            self._speed[base] = speed if old is None else (
                (1 - SPEED_WEIGHT) * old + SPEED_WEIGHT * speed)

    def speeds(self) -> dict[str, float]:
        """Each measured base's throughput in bytes per second."""
        with self._lock:
            return dict(self._speed)

    def base_for(self, candidate: str) -> str | None:
        for base in self.bases:
            if candidate.startswith(base):
                return base
        return None

    def mark_unhealthy(self, candidate: str, why: str = "") -> None:
        """Skip the base that served ``candidate`` for the cool-down period (its measured
        speed is halved too, so it comes back behind the others); ``why`` goes to the log."""
        base = self.base_for(candidate)
        if base is not None:
            with self._lock:
                self._unhealthy_until[base] = self.clock() + self.cooldown
                if base in self._speed:
                    self._speed[base] /= 2
            log.warning("mirror %s marked unhealthy for %.0fs%s", redact_url(base),
                        self.cooldown, f": {why}" if why else "")

    def mark_healthy(self, candidate: str) -> None:
        base = self.base_for(candidate)
        if base is not None:
            with self._lock:
                self._unhealthy_until.pop(base, None)
