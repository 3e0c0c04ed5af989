"""Upstream answers read into memory, never past a limit.

Whatever the library parses from an upstream is read whole before it is parsed, so each kind
has a limit, and nothing past it is read: a token endpoint's answer
(:data:`~.auth.MAX_TOKEN_ANSWER`, 64 KiB), a mirror list or Metalink document
(:data:`MAX_MIRRORLIST_SIZE`, 16 MiB), a document given to a
:class:`~.writers.MemoryWriter` (its ``max_size``; a sync's manifest: 256 MiB). The bodies of
error answers (``4xx``/``5xx``) are never read at all: the connection is dropped and the
error names the status.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import aiohttp

#: Largest mirror list or Metalink document read (bytes); a larger one is refused whole
#: (the remote's configured mirrors are used). Real ones are a few kilobytes.
MAX_MIRRORLIST_SIZE = 16 * 1024 * 1024


async def read_bounded(response: aiohttp.ClientResponse, limit: int,
                       too_large: Callable[[], Exception]) -> bytes:
    """The body of an aiohttp ``response``, or ``too_large()`` raised once it is known to
    exceed ``limit`` bytes (see :func:`read_up_to`)."""
    body = await read_up_to(response, limit)
    if body is None:
        raise too_large()
    return body


async def read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body of an aiohttp ``response``, or ``None`` once it is known to exceed ``limit``
    bytes: at once for a larger ``Content-Length``, else after reading at most
    ``limit + 1`` bytes (nothing more is read; the caller drops the connection)."""
    if (response.content_length or 0) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    while True:
        part = await response.content.read(limit + 1 - size)
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
        if size > limit:
            return None


def read_file_bounded(path: Path, limit: int, too_large: Callable[[], Exception]) -> bytes:
    """The bytes of the file at ``path``, or ``too_large()`` raised when it holds more than
    ``limit`` bytes (at most ``limit + 1`` are read). Blocking: run it in an executor."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise too_large()
    return data
