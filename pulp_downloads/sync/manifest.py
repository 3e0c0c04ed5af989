"""PULP_MANIFEST parsing: one ``relative_path,sha256,size`` line per file, checked strictly.

Error messages name the line number and the field, never the line's content: a manifest URL
may point at a file that is not a manifest, and its text must not come back in an error."""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_SIZE = re.compile(r"^[0-9]{1,19}$")  # ASCII digits only ("²".isdigit() is true)
#: The largest size a file may have (what a signed 64-bit database column holds).
MAX_SIZE = 2**63 - 1
MAX_PATH_LENGTH = 1024


class ManifestError(ValueError):
    """A manifest line is malformed; ``line`` is its 1-based number (the message quotes no
    content of the line)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"PULP_MANIFEST line {line}: {message}")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file listed by a manifest."""

    relative_path: str
    sha256: str
    size: int
    line: int


def check_relative_path(path: str) -> str | None:
    """Why ``path`` is not a safe relative path, or ``None`` when it is."""
    if not path:
        return "relative_path is empty"
    if len(path) > MAX_PATH_LENGTH:
        return f"relative_path is longer than {MAX_PATH_LENGTH} characters"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "relative_path is an absolute path, which is not allowed"
    if "\\" in path or any(ord(c) < 32 for c in path):
        return "relative_path contains a backslash or a control character"
    parts = path.split("/")
    if ".." in parts:
        return "relative_path escapes the repository with '..'"
    if any(part in ("", ".") for part in parts) or posixpath.normpath(path) != path:
        return "relative_path is not normalised"
    return None


def parse_manifest(text: str) -> list[ManifestEntry]:
    """Parse a whole manifest. Blank lines are ignored; anything else malformed raises
    :class:`ManifestError` naming the line, before any file is downloaded."""
    entries: list[ManifestEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        fields = line.rsplit(",", 2)
        if len(fields) != 3:
            raise ManifestError(number, "expected three fields 'relative_path,sha256,size'")
        path, digest, size_text = (field.strip() for field in fields)
        problem = check_relative_path(path)
        if problem:
            raise ManifestError(number, problem)
        if not _SHA256.match(digest):
            raise ManifestError(number, "sha256 is not a 64-character hex digest")
        if not _SIZE.match(size_text):
            raise ManifestError(number, "size is not a non-negative integer")
        if int(size_text) > MAX_SIZE:
            raise ManifestError(number, f"size is larger than {MAX_SIZE} bytes")
        if path in seen:
            raise ManifestError(number,
                                f"relative_path is listed twice (first on line {seen[path]})")
        seen[path] = number
        entries.append(ManifestEntry(path, digest.lower(), int(size_text), number))
    return entries

