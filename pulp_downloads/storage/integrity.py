"""Is an Artifact's file intact? Its presence, size and (optionally) digests in storage."""
from __future__ import annotations

import os

from ..download.defaults import BLOCK_SIZE
from ..download.digests import Digester, digests_of_file
from .objects import ObjectStore
from .paths import local_storage_path

MISSING = "missing"


def check_file(storage, name: str, size: int, digests: dict[str, str] | None = None) -> str | None:
    """``None`` when the file ``name`` is in ``storage`` with ``size`` bytes (and, when
    ``digests`` are given, those digests); else what is wrong: ``"missing"`` or
    ``"corrupt: ..."``. Reads the whole file only to check digests."""
    local = local_storage_path(storage, name)
    if local is not None:
        try:
            actual = os.stat(local).st_size
        except FileNotFoundError:
            return MISSING
        if actual != size:
            return f"corrupt: {actual} bytes instead of {size}"
        if not digests:
            return None
        computed, _ = digests_of_file(local, list(digests), BLOCK_SIZE)
        return _compare(digests, computed)
    objects = ObjectStore.of(storage)
    if objects is None:
        if not storage.exists(name):
            return MISSING
        actual = storage.size(name)
        if actual != size:
            return f"corrupt: {actual} bytes instead of {size}"
        if not digests:
            return None
        digester = Digester(list(digests))
        with storage.open(name, "rb") as fh:
            while block := fh.read(BLOCK_SIZE):
                digester.update(block)
        return _compare(digests, digester.hexdigests())
    actual = objects.size(name)
    if actual is None:
        return MISSING
    if actual != size:
        return f"corrupt: {actual} bytes instead of {size}"
    if not digests:
        return None
    digester = Digester(list(digests))
    body = objects.get(name, 0, size) if size else None
    if body is not None:
        try:
            for block in body.iter_chunks(BLOCK_SIZE):
                digester.update(block)
        finally:
            body.close()
    return _compare(digests, digester.hexdigests())


def _compare(expected: dict[str, str], computed: dict[str, str]) -> str | None:
    for name, value in expected.items():
        if computed.get(name) != value:
            return f"corrupt: {name} differs"
    return None
