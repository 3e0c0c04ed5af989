"""Validated downloads kept when storing them failed, so that the next sync does not fetch
them again.

When a :class:`~.session.StoreSession` fails (the database stayed unavailable, ...), the
complete, validated files it had been given and not committed are moved (or, once placed in
local storage, hard-linked) into a :class:`KeptFiles` directory, one file per sha256. The
next sync takes each file it needs from there instead of downloading it, after reading it
again: a kept file is used only when its sha256 and size are the ones expected.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from ..conf import app_settings
from ..download.defaults import BLOCK_SIZE
from ..download.partials import remove_untouched
from .durability import fsync_path
from ..download.digests import digests_of_file

log = logging.getLogger(__name__)

#: Under the working directory: validated files a failed sync left for the next one.
KEPT_DIRECTORY = "kept"
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class KeptFiles:
    """Complete, validated files under ``directory``, by sha256 (see the module docstring).
    Any process may keep or take files; :meth:`take` gives each file to one caller only."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)

    def path(self, sha256: str) -> Path:
        """Where the file of ``sha256`` (lower-case hex) is kept."""
        if not _SHA256_HEX.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.directory / sha256

    def keep(self, sha256: str, source: Path | bytes, *, link: bool = False) -> bool:
        """Keep ``source`` as the file of ``sha256``: a file is moved here (``link``: hard
        linked, the original stays; copied when another file system holds it), content is
        written to a new file. Durable before it is visible. Returns whether it was kept
        (failures are logged: keeping is a saving, not a duty)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, staging = tempfile.mkstemp(prefix=".keep-", dir=self.directory)
            os.close(fd)
            staging = Path(staging)
            try:
                if isinstance(source, bytes):
                    staging.write_bytes(source)
                elif link:
                    staging.unlink()
                    try:
                        os.link(source, staging)
                    except OSError:  # another file system, or no hard links there
                        shutil.copyfile(source, staging)
                else:
                    os.replace(source, staging)
                fsync_path(staging)
                os.utime(staging)  # the age counts from now (see cleanup)
                os.replace(staging, self.path(sha256))
            finally:
                staging.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not keep the validated file %s for the next sync: %s",
                        sha256, exc)
            return False
        return True

    def sha256s(self) -> set[str]:
        """The sha256s of the files kept now."""
        try:
            return {name for name in os.listdir(self.directory) if _SHA256_HEX.fullmatch(name)}
        except FileNotFoundError:
            return set()

    def take(self, sha256: str, size: int, algorithms: tuple[str, ...],
             into: str | os.PathLike) -> tuple[Path, dict[str, str]] | None:
        """Move the kept file of ``sha256`` into the directory ``into`` (for this caller
        alone), read it again and return its new path and its ``algorithms`` digests (sha256
        among them) when its sha256 and size are the ones expected; ``None`` when no file is
        kept, another caller took it, or it does not match (it is then removed). The file
        is durable when returned."""
        claimed = Path(into) / f"kept-{sha256}-{os.getpid()}-{time.monotonic_ns()}"
        try:
            os.replace(self.path(sha256), claimed)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("could not take the kept file of %s (%s): it will be downloaded",
                        sha256, exc)
            return None
        try:
            digests, actual_size = digests_of_file(claimed, algorithms, BLOCK_SIZE)
            if digests.get("sha256") != sha256 or actual_size != size:
                log.warning("the kept file of %s does not match (sha256 %s, %d bytes instead "
                            "of %d): removed, it will be downloaded", sha256,
                            digests.get("sha256"), actual_size, size)
                claimed.unlink(missing_ok=True)
                return None
            fsync_path(claimed)
        except OSError as exc:
            log.warning("could not read the kept file of %s (%s): it will be downloaded",
                        sha256, exc)
            claimed.unlink(missing_ok=True)
            return None
        return claimed, digests

    def cleanup(self, older_than: float) -> int:
        """Remove kept files untouched for ``older_than`` seconds; returns how many went."""
        return remove_untouched(self.directory, older_than)


def kept_files() -> KeptFiles:
    """Where this site's syncs keep validated files they could not store."""
    return KeptFiles(app_settings().working_directory / KEPT_DIRECTORY)

