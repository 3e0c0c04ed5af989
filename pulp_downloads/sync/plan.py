"""What a sync must do: the listed content not stored yet, and the remote's ContentUnits."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import F, OuterRef, Subquery

from ..heartbeat import beat_within_transaction
from ..models import Artifact, ContentUnit, Remote
from ..models.bulk import chunks
from ..storage.integrity import stored_sizes
from .manifest import ManifestEntry

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """The listed content and what to download of it."""

    to_download: list[ManifestEntry]
    paths_by_sha256: dict[str, list[str]]
    already_present: int
    stored: set[str]  # sha256s of the listed content already stored
    #: sha256s whose Artifact exists but whose file is missing from storage (or has another
    #: size than the Artifact's): they are downloaded again and their files put back.
    restore: set[str] = field(default_factory=set)


def make_plan(entries: list[ManifestEntry], storage) -> Plan:
    """What must be downloaded: the listed content not stored yet in ``storage`` (reads
    only). The files of the Artifacts already there are checked in storage, on every
    backend, without reading them (see :func:`~..storage.integrity.stored_sizes`): those
    missing or of another size than their Artifact's are downloaded again (:attr:`Plan.restore`)."""
    paths_by_sha256: dict[str, list[str]] = {}
    for entry in entries:
        paths_by_sha256.setdefault(entry.sha256, []).append(entry.relative_path)
    stored: set[str] = set()
    restore: set[str] = set()
    rows: list[tuple[str, str, int]] = []
    for chunk in chunks(list(paths_by_sha256)):
        rows.extend(Artifact.objects.filter(sha256__in=chunk).values_list("sha256", "file",
                                                                            "size"))
    sizes = stored_sizes(storage, [name for _, name, _ in rows])
    for sha256, name, size in rows:
        if sizes[name] != size:
            restore.add(sha256)  # the row is there, its file is not (or not whole)
        else:
            stored.add(sha256)
    if restore:
        log.warning("%d stored file(s) are missing from storage or damaged: downloading them "
                    "again", len(restore))
    first_entry: dict[str, ManifestEntry] = {}
    for entry in entries:
        if entry.sha256 not in stored:
            first_entry.setdefault(entry.sha256, entry)
    already = sum(len(paths) for sha, paths in paths_by_sha256.items() if sha in stored)
    return Plan(list(first_entry.values()), paths_by_sha256, already, stored, restore)


@transaction.atomic
def record_units(remote: Remote, entries: list[ManifestEntry], stored: set[str]) -> None:
    """Insert, update and delete the remote's ContentUnits to match ``entries``; link units
    whose content is in ``stored`` (sha256s of Artifacts). One transaction, which commits
    the heartbeat of this process's running tasks with the units (a million of them take
    minutes, during which SQLite lets no other connection beat it)."""
    listed = {entry.relative_path: entry for entry in entries}
    existing = {unit.relative_path: unit for unit in ContentUnit.objects.filter(remote=remote)
                .only("pk", "relative_path", "sha256", "size", "artifact_id")}

    gone = [unit.pk for path, unit in existing.items() if path not in listed]
    for chunk in chunks(gone):
        ContentUnit.objects.filter(pk__in=chunk).delete()

    changed = []
    for path, unit in existing.items():
        entry = listed.get(path)
        if entry and (unit.sha256 != entry.sha256 or unit.size != entry.size):
            unit.sha256, unit.size, unit.artifact_id, unit.last_error = (
                entry.sha256, entry.size, None, "")
            changed.append(unit)
    ContentUnit.objects.bulk_update(changed, ["sha256", "size", "artifact", "last_error"],
                                    batch_size=500)
    ContentUnit.insert_new(remote.pk, [(e.relative_path, e.sha256, e.size)
                                       for path, e in listed.items() if path not in existing])
    if stored:
        unlinked = ContentUnit.objects.filter(remote=remote).exclude(
            artifact_id__isnull=False, artifact__sha256=F("sha256")
        ).values_list("sha256", flat=True)
        link_units(remote, sorted({sha for sha in unlinked if sha in stored}))
    beat_within_transaction()


def link_units(remote: Remote, sha256s: list[str]) -> None:
    """Point the remote's units with these sha256s at their Artifacts (one UPDATE a chunk)."""
    artifact_id = Subquery(Artifact.objects.filter(sha256=OuterRef("sha256")).values("pk")[:1])
    for chunk in chunks(sha256s):
        ContentUnit.objects.filter(remote=remote, sha256__in=chunk).update(
            artifact_id=artifact_id, last_error=""
        )


def record_failures(remote: Remote, failures: dict[str, str]) -> None:
    """Keep each failed path's error on its ContentUnit."""
    for path, error in failures.items():
        ContentUnit.objects.filter(remote=remote, relative_path=path).update(
            last_error=error[:2000])
