"""Mirrors of a remote: which base URLs may serve a file, and which are healthy."""
from __future__ import annotations

import logging
import threading
import time
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def base_of(url: str) -> str:
    """The directory part of ``url``, ending in ``/``."""
    return url if url.endswith("/") else url.rsplit("/", 1)[0] + "/"


def parse_mirrorlist(text: str) -> list[str]:
    """Base URLs from a mirror list: one per line, blank lines and ``#`` comments ignored."""
    mirrors = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = urlsplit(line)
        if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
            log.warning("mirror list line %d ignored: not an http(s) base URL", number)
            continue
        mirrors.append(line if line.endswith("/") else line + "/")
    return mirrors


class MirrorSet:
    """The primary base URL, its mirrors, and each mirror's health (thread-safe)."""

    def __init__(self, primary_base: str, mirrors: list[str], cooldown: float) -> None:
        self.primary = base_of(primary_base)
        self._mirrors: list[str] = []
        self.cooldown = cooldown
        self._unhealthy_until: dict[str, float] = {}
        self._lock = threading.Lock()
        self.add(mirrors)

    def add(self, mirrors: list[str]) -> None:
        """Add mirror base URLs (duplicates and the primary itself are ignored)."""
        with self._lock:
            for mirror in mirrors:
                mirror = mirror if mirror.endswith("/") else mirror + "/"
                if mirror != self.primary and mirror not in self._mirrors:
                    self._mirrors.append(mirror)

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
        now = time.monotonic()
        with self._lock:
            healthy = [b for b in self.bases if self._unhealthy_until.get(b, 0) <= now]
            sick = [b for b in self.bases if self._unhealthy_until.get(b, 0) > now]
        return [base + relative for base in healthy + sick]

    def base_for(self, candidate: str) -> str | None:
        for base in self.bases:
            if candidate.startswith(base):
                return base
        return None

    def mark_unhealthy(self, candidate: str) -> None:
        """Skip the base that served ``candidate`` for the cool-down period."""
        base = self.base_for(candidate)
        if base is not None:
            with self._lock:
                self._unhealthy_until[base] = time.monotonic() + self.cooldown
            log.warning("mirror %s marked unhealthy for %.0fs", base, self.cooldown)

    def mark_healthy(self, candidate: str) -> None:
        base = self.base_for(candidate)
        if base is not None:
            with self._lock:
                self._unhealthy_until.pop(base, None)

    def is_healthy(self, base: str) -> bool:
        with self._lock:
            return self._unhealthy_until.get(base, 0) <= time.monotonic()
