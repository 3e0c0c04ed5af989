"""Repair: find Artifacts whose files are missing or corrupt, and fetch them again.

``repair_artifacts(remote=None, verify_digests=False)`` checks every Artifact (of one
remote's content, or all): its file exists in storage with the Artifact's size, and, with
``verify_digests``, its bytes match every digest the Artifact records (hashed on a thread per
core). A missing or corrupt file is downloaded again from the remotes whose ContentUnits
name it (each remote's mirrors apply), checked against its sha256 and size, and put in place
atomically; what no remote can give back is reported as unrepairable.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from urllib.parse import quote

from asgiref.sync import async_to_sync, sync_to_async

from ..download import DownloaderFactory, DownloadError
from ..models import Artifact, ContentUnit, Remote
from ..storage import ArtifactStore
from ..storage.integrity import MISSING, check_file
from ..storage.paths import ArtifactError
from .progress import ProgressCallback, Reporter, SyncProgress
from .workfiles import private_library_settings
from .summary import SyncError

log = logging.getLogger(__name__)


@dataclass
class RepairSummary:
    """What a repair found and did; ``failures`` lists each file not repaired."""

    checked: int = 0
    missing: int = 0
    corrupt: int = 0
    repaired: int = 0
    unrepairable: int = 0
    failures: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


class UnrepairableError(SyncError):
    """Some files could not be repaired; ``summary`` lists them (a :class:`RepairSummary`)."""


@dataclass(frozen=True)
class Checked:
    """One Artifact as the repair sees it."""

    pk: int
    sha256: str
    size: int
    name: str
    digests: dict[str, str]


def repair_artifacts(remote: Remote | None = None, *, verify_digests: bool = False,
                     only: list[int] | None = None, progress: ProgressCallback | None = None,
                     progress_interval: float = 0.5) -> RepairSummary:
    """Repair from sync code; see :func:`async_repair_artifacts`."""
    return async_to_sync(async_repair_artifacts)(
        remote, verify_digests=verify_digests, only=only, progress=progress,
        progress_interval=progress_interval)


async def async_repair_artifacts(remote: Remote | None = None, *, verify_digests: bool = False,
                                 only: list[int] | None = None,
                                 progress: ProgressCallback | None = None,
                                 progress_interval: float = 0.5) -> RepairSummary:
    """Check, then repair, the Artifacts of ``remote``'s content (all when ``None``; only
    the Artifacts whose ids are in ``only``, when given).

    Returns the summary; raises :class:`UnrepairableError` (with it) when some file could
    not be repaired, and :class:`SyncCanceled` when ``progress`` raised it. ``progress``
    gets a :class:`SyncProgress`: files are the Artifacts checked, bytes the bytes hashed
    (with ``verify_digests``).
    """
    store = await sync_to_async(ArtifactStore)()
    artifacts = await sync_to_async(_artifacts_of)(remote, only)
    summary = RepairSummary()
    state = SyncProgress(files_total=len(artifacts), stage="check",
                         bytes_total=sum(a.size for a in artifacts) if verify_digests else 0)

    async def check_then_repair() -> None:
        bad = await _check_all(store, artifacts, verify_digests, state, summary)
        state.stage = "repair"
        if bad:
            await _repair_all(store, bad, remote, summary)

    await Reporter(progress, state, progress_interval).watch(check_then_repair(), summary)
    log.info("repair%s: %d checked, %d missing, %d corrupt, %d repaired, %d unrepairable",
             f" of {remote.name}" if remote else "", summary.checked, summary.missing,
             summary.corrupt, summary.repaired, summary.unrepairable)
    if summary.unrepairable:
        raise UnrepairableError(f"{summary.unrepairable} of {summary.missing + summary.corrupt} "
                                "damaged file(s) could not be repaired", summary)
    return summary


def _artifacts_of(remote: Remote | None, only: list[int] | None) -> list[Checked]:
    artifacts = Artifact.objects.all()
    if only:
        artifacts = artifacts.filter(pk__in=only)
    if remote is not None:
        artifacts = artifacts.filter(
            pk__in=ContentUnit.objects.filter(remote=remote, artifact__isnull=False)
            .values("artifact_id"))
    columns = Artifact.DIGEST_FIELDS
    return [Checked(row["pk"], row["sha256"], row["size"], row["file"],
                    {name: row[name] for name in columns if row[name]})
            for row in artifacts.order_by("pk").values("pk", "sha256", "size", "file", *columns)]


async def _check_all(store: ArtifactStore, artifacts: list[Checked], verify: bool,
                     state: SyncProgress, summary: RepairSummary) -> dict[str, tuple[Checked, str]]:
    """``{sha256: (artifact, problem)}`` of the damaged files, checked on a thread per core."""
    loop = asyncio.get_running_loop()
    bad: dict[str, tuple[Checked, str]] = {}
    workers = max(2, os.cpu_count() or 2)

    def check(artifact: Checked) -> str | None:
        return check_file(store.storage, artifact.name, artifact.size,
                          artifact.digests if verify else None)

    with ThreadPoolExecutor(workers, thread_name_prefix="repair-check") as pool:
        window = workers * 2
        for start in range(0, len(artifacts), window):
            part = artifacts[start:start + window]
            problems = await asyncio.gather(*(loop.run_in_executor(pool, check, a) for a in part))
            for artifact, problem in zip(part, problems):
                summary.checked += 1
                state.files_done += 1
                if verify:
                    state.bytes_done += artifact.size
                if problem is not None:
                    if problem == MISSING:
                        summary.missing += 1
                    else:
                        summary.corrupt += 1
                    bad[artifact.sha256] = (artifact, problem)
    return bad


async def _repair_all(store: ArtifactStore, bad: dict[str, tuple[Checked, str]],
                      preferred: Remote | None, summary: RepairSummary) -> None:
    sources = await sync_to_async(_sources_of)(list(bad), preferred)
    library = private_library_settings()
    factories: dict[int, DownloaderFactory] = {}
    try:
        for sha256, (artifact, problem) in bad.items():
            errors = []
            for remote, relative_path in sources.get(sha256, []):
                factory = factories.get(remote.pk)
                if factory is None:
                    factory = factories[remote.pk] = DownloaderFactory(remote, settings=library)
                try:
                    result = await factory.build(
                        quote(relative_path), expected_digests={"sha256": sha256},
                        expected_size=artifact.size).run()
                except DownloadError as exc:
                    errors.append(f"{remote.name}: {exc}")
                    continue
                try:
                    await sync_to_async(store.replace_file)(artifact.name, result.path,
                                                            artifact.size)
                except ArtifactError as exc:
                    errors.append(f"{remote.name}: {exc}")
                    continue
                summary.repaired += 1
                log.info("repaired %s (%s) from %s/%s", artifact.name, problem, remote.name,
                         relative_path)
                break
            else:
                summary.unrepairable += 1
                summary.failures.append({
                    "sha256": sha256, "file": artifact.name, "problem": problem,
                    "error": "; ".join(errors) or "no remote lists this content"})
    finally:
        for factory in factories.values():
            await factory.close()
        await sync_to_async(shutil.rmtree)(library.working_directory, ignore_errors=True)


def _sources_of(sha256s: list[str], preferred: Remote | None) -> dict[str, list]:
    """``{sha256: [(remote, relative_path), ...]}``: where each content is listed, the
    preferred remote first."""
    sources: dict[str, list] = {}
    units = (ContentUnit.objects.filter(sha256__in=sha256s).select_related("remote")
             .order_by("remote__name", "relative_path"))
    for unit in units:
        sources.setdefault(unit.sha256, []).append((unit.remote, unit.relative_path))
    if preferred is not None:
        for listed in sources.values():
            listed.sort(key=lambda source: source[0].pk != preferred.pk)
    return sources

