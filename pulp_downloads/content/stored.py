"""Answering a request for a stored Artifact: validators, ranges and headers, decided once for
the Django view and the fast ASGI path alike (no I/O here)."""
from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from email.utils import formatdate

#: The ASGI scope key where a request's answering path is noted for the metrics: "storage",
#: "on_demand" or "streamed" ("none" when nothing was found).
SOURCE = "pulp_downloads.source"
_RANGE = re.compile(r"^bytes=([0-9]*)-([0-9]*)$")
#: Positions have at most this many digits (2**63 has 19); longer ones cannot be satisfied.
_MAX_POSITION_DIGITS = 19


def content_type(path: str) -> str:
    """The media type guessed from a file name (``application/octet-stream`` when unknown)."""
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What is needed to answer for one stored file."""

    name: str            # the storage name, e.g. ``artifact/ab/cdef...``
    size: int
    sha256: str
    last_modified: str   # the Artifact's creation time as an HTTP date
    media_type: str

    @classmethod
    def of(cls, artifact, relative_path: str) -> "StoredFile":
        """The stored file of an Artifact, served under ``relative_path``."""
        return cls(artifact.file.name, artifact.size, artifact.sha256,
                   formatdate(artifact.created.timestamp(), usegmt=True),
                   content_type(relative_path))

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


@dataclass(frozen=True, slots=True)
class Answer:
    """The status and headers to send, and which bytes (``start``..``stop``) follow."""

    status: int
    headers: dict[str, str]
    start: int = 0
    stop: int = 0

    @property
    def has_body(self) -> bool:
        return self.stop > self.start


def answer(file: StoredFile, method: str, if_none_match: str | None, range_header: str | None,
           if_range: str | None) -> Answer:
    """How to answer ``method`` (GET or HEAD) for ``file`` given the request's validators."""
    etag = file.etag
    if if_none_match is not None and etag in (value.strip() for value in if_none_match.split(",")):
        return Answer(304, {"ETag": etag})
    headers = {
        "ETag": etag, "Last-Modified": file.last_modified,
        "Accept-Ranges": "bytes", "Content-Type": file.media_type,
    }
    size = file.size
    start, stop, status = 0, size, 200
    if range_header and (if_range is None or if_range == etag):
        match = _RANGE.match(range_header.strip())
        if match and (match.group(1) or match.group(2)):
            first, last = match.group(1), match.group(2)
            if max(len(first), len(last)) > _MAX_POSITION_DIGITS:
                return _unsatisfiable(size, headers)
            if first:
                start = int(first)
                stop = min(int(last) + 1, size) if last else size
            else:
                start, stop = max(size - int(last), 0), size
            if start >= size or start >= stop:
                return _unsatisfiable(size, headers)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    headers["Content-Length"] = str(stop - start)
    if method == "HEAD":
        return Answer(status, headers)
    return Answer(status, headers, start, stop)


def _unsatisfiable(size: int, headers: dict[str, str]) -> Answer:
    return Answer(416, {**headers, "Content-Range": f"bytes */{size}", "Content-Length": "0"})
