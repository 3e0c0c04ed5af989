"""The integrity check every sync test can end with, and the seeded faults of the chaos tests.

:func:`assert_artifacts_intact` re-reads every Artifact's file from storage and compares its
size and every digest with the row. :class:`ChaosUpstream` serves files with Range support and
breaks, stalls or slows its answers by a seeded plan; :class:`SlowHasher` and
:func:`slow_writer` delay single digests and the writer by the same plan (through the library's
``hasher_factory`` hook and the writer protocol's ``blocking_write``).
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import random
import time

from aiohttp import web
from django.core.files.storage import default_storage

from pulp_downloads.download.digests import DIGEST_ALGORITHMS
from pulp_downloads.models import Artifact

BLOCK = 1024 * 1024


def artifact_disagreements() -> list[str]:
    """What disagrees between each Artifact's row and the bytes of its file in storage."""
    problems = []
    for artifact in Artifact.objects.order_by("sha256"):
        hashers = {name: hashlib.new(name) for name in DIGEST_ALGORITHMS}
        size = 0
        try:
            with default_storage.open(artifact.file.name, "rb") as fh:
                while block := fh.read(BLOCK):
                    size += len(block)
                    for hasher in hashers.values():
                        hasher.update(block)
        except (OSError, ValueError) as exc:
            problems.append(f"{artifact.sha256}: file unreadable: {exc}")
            continue
        if size != artifact.size:
            problems.append(f"{artifact.sha256}: row size {artifact.size}, file has {size}")
        for name, hasher in hashers.items():
            recorded = getattr(artifact, name)
            if recorded is not None and recorded != hasher.hexdigest():
                problems.append(f"{artifact.sha256}: row {name} {recorded}, "
                                f"file {hasher.hexdigest()}")
    return problems


def assert_artifacts_intact() -> int:
    """Fail unless every Artifact's file agrees with its row (size and every digest on it);
    returns how many Artifacts were checked. Call it from sync code (or wrap it)."""
    problems = artifact_disagreements()
    assert not problems, "stored Artifacts disagree with their rows:\n" + "\n".join(problems)
    return Artifact.objects.count()


class Plan:
    """Seeded decisions: the same seed, path and request number always decide the same."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def rng(self, *key) -> random.Random:
        return random.Random(":".join(str(part) for part in (self.seed, *key)))


class ChaosUpstream:
    """A loopback file server (ETag, ``Accept-Ranges``, single ``Range`` with ``If-Range``)
    whose first ``faulty_requests`` answers per path may break at a random offset, stall past
    the client's read timeout then break, or pause briefly mid-body, by a seeded plan."""

    def __init__(self, plan: Plan, files: dict[str, bytes], *, faulty_requests: int = 3,
                 stall: float = 4.0) -> None:
        self.plan = plan
        self.files = files
        self.faulty_requests = faulty_requests
        self.stall = stall
        self.requests: dict[str, int] = {}
        self.faults: list[tuple[str, str, int]] = []
        self.server = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.handle)
        return app

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    def manifest(self) -> bytes:
        return "".join(f"{path},{hashlib.sha256(data).hexdigest()},{len(data)}\n"
                       for path, data in self.files.items()).encode()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path == "PULP_MANIFEST":
            return web.Response(body=self.manifest())
        if path not in self.files:
            return web.Response(status=404)
        data = self.files[path]
        number = self.requests.get(path, 0)
        self.requests[path] = number + 1
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        headers = {"Accept-Ranges": "bytes", "ETag": etag}
        start, status = 0, 200
        asked = request.headers.get("Range", "")
        if asked.startswith("bytes=") and request.headers.get("If-Range", etag) == etag:
            start = int(asked[len("bytes="):].split("-")[0])
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            status = 206
        body = memoryview(data)[start:]
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        rng = self.plan.rng(path, number)
        fault = rng.choices(["none", "break", "stall", "pause"], [3, 4, 1, 2])[0]
        if number >= self.faulty_requests:
            fault = "none"
        cut = rng.randrange(1, len(body)) if len(body) > 1 else len(body)
        if fault != "none":
            self.faults.append((path, fault, start + cut))
        for offset in range(0, len(body), 64 * 1024):
            piece = body[offset:offset + 64 * 1024]
            if fault != "none" and offset <= cut < offset + len(piece):
                await response.write(piece[:cut - offset])
                if fault == "pause":
                    await asyncio.sleep(rng.uniform(0.01, 0.2))
                    await response.write(piece[cut - offset:])
                    continue
                if fault == "stall":
                    await asyncio.sleep(self.stall)
                await asyncio.sleep(0)
                request.transport.close()
                return response
            await response.write(piece)
        await response.write_eof()
        return response


class SlowHasher:
    """A hash object whose ``update`` first sleeps a seeded random time: up to ``most`` s,
    or up to ``laggard`` s for the seeded share of hashers that lag far behind the others."""

    def __init__(self, plan: Plan, name: str, most: float, laggard: float) -> None:
        self._hasher = hashlib.new(name)
        self._rng = plan.rng("hasher", name, next(_instances))
        self._most = laggard if self._rng.random() < 0.25 else most
        self.name = name

    def update(self, data) -> None:
        time.sleep(self._rng.uniform(0, self._most))
        self._hasher.update(data)

    def hexdigest(self) -> str:
        return self._hasher.hexdigest()

    def digest(self) -> bytes:
        return self._hasher.digest()


_instances = itertools.count()


def slow_hashers(plan: Plan, most: float = 0.002, laggard: float = 0.04):
    """A ``hasher_factory`` (see ``LibrarySettings``) whose digests lag at random."""
    return lambda name: SlowHasher(plan, name, most, laggard)


def slow_writer(writer, plan: Plan, most: float = 0.002, laggard: float = 0.05):
    """``writer`` with its thread-side ``blocking_write`` delayed at random before each block
    (the writer protocol: the pipeline calls ``blocking_write`` from worker threads); half of
    the writers lag far behind the digests (up to ``laggard`` s a block)."""
    rng = plan.rng("writer", next(_instances))
    delay = laggard if rng.random() < 0.5 else most
    original = writer._blocking_write

    def delayed(block) -> None:
        time.sleep(rng.uniform(0, delay))
        original(block)

    writer._blocking_write = delayed
    return writer
