"""``file://`` URLs: turning them into local paths confined to allowed roots."""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit


class FileUrlError(ValueError):
    """A ``file://`` URL is malformed or points outside every allowed root."""


def file_url_to_path(url: str) -> Path:
    """Return the absolute local path a ``file://`` URL names (not yet checked against roots)."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise FileUrlError(f"not a file:// URL: {url!r}")
    if parts.netloc not in ("", "localhost"):
        raise FileUrlError(f"file:// URLs must name a local path, not host {parts.netloc!r}")
    if parts.query or parts.fragment:
        raise FileUrlError("file:// URLs cannot carry a query or fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise FileUrlError(f"file:// URL must hold an absolute path: {url!r}")
    if "\x00" in path:
        raise FileUrlError("file:// URL contains a NUL byte")
    return Path(path)


def confine_to_roots(path: Path, roots: Iterable[Path]) -> Path:
    """Resolve ``path`` (``..`` and symlinks) and return it if it lies under one of ``roots``.

    Raises :class:`FileUrlError` when it lies under none of them (or no root is allowed).
    """
    resolved = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(root)) for root in roots]
    if not roots:
        raise FileUrlError("file:// URLs are not allowed: no allowed roots are configured")
    for root in roots:
        if resolved == root or resolved.is_relative_to(root):
            return resolved
    # The roots are not named: whoever reads this (an API user, a task's error) may not be
    # someone who can see the site's settings.
    raise FileUrlError(
        f"{path} is outside the directories allowed for file:// URLs "
        "(the site setting PULP_DOWNLOADS_FILE_ROOTS)"
    )
