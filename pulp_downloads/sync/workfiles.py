"""A sync's work files: its private working directory, the partial downloads kept across
runs, and the clean-up of what interrupted work left behind."""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from ..conf import app_settings, library_settings
from ..download import LibrarySettings
from ..download.partials import PartialFiles
from ..storage import ArtifactStore
from ..storage.directories import prepare_fanout_directory
from ..storage.kept import kept_files

log = logging.getLogger(__name__)

#: Temporary download files untouched for this long belong to dead processes.
STALE_TEMP_FILE_AGE = timedelta(hours=6)
SYNC_DIR_PREFIX = "sync-"
#: Under the working directory: partial downloads kept for the next sync to resume.
PARTIALS_DIRECTORY = "partials"


def private_library_settings() -> LibrarySettings:
    """The site's library settings with a fresh working directory of its own (removed by
    the caller when done; by :func:`remove_stale_work_files` when its process died):
    directories that saw many files come and go get slow to create files in."""
    site = library_settings()
    working = Path(tempfile.mkdtemp(prefix=SYNC_DIR_PREFIX,
                                      dir=prepare_fanout_directory(site.working_directory)))
    return dataclasses.replace(site, working_directory=working)


def partial_files() -> PartialFiles:
    """Where syncs keep partial downloads of large files across runs."""
    return PartialFiles(app_settings().working_directory / PARTIALS_DIRECTORY)


def remove_stale_work_files(store: ArtifactStore) -> None:
    """Remove orphans of interrupted work: artifact files whose store was interrupted, and
    stale temporary files of syncs and of content serving (a web process stopped
    mid-download leaves its ``serving/*.part``)."""
    conf = app_settings()
    store.cleanup_orphans(conf.orphan_cleanup_age)
    removed = partial_files().cleanup(conf.partial_max_age.total_seconds())
    if removed:
        log.info("removed %d partial download file(s) older than %s", removed,
                 conf.partial_max_age)
    removed = kept_files().cleanup(conf.partial_max_age.total_seconds())
    if removed:
        log.info("removed %d kept file(s) of failed syncs older than %s", removed,
                 conf.partial_max_age)
    cutoff = time.time() - STALE_TEMP_FILE_AGE.total_seconds()
    for directory in (conf.working_directory, conf.working_directory / "serving"):
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.stat().st_mtime >= cutoff:
                        continue
                    if entry.is_file() and entry.name.startswith(("download-", "serve-")):
                        os.unlink(entry.path)
                    elif entry.is_dir() and entry.name.startswith(SYNC_DIR_PREFIX):
                        shutil.rmtree(entry.path, ignore_errors=True)
        except FileNotFoundError:
            pass
