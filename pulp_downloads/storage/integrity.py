"""Is an Artifact's file intact? Its presence, size and (optionally) digests in storage."""
from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from ..download.defaults import BLOCK_SIZE
from ..download.digests import digests_of_blocks
from .objects import ObjectStore
from .paths import local_storage_path

MISSING = "missing"


def check_file(storage, name: str, size: int, digests: dict[str, str] | None = None) -> str | None:
    """``None`` when the file ``name`` is in ``storage`` with ``size`` bytes (and, when
    ``digests`` are given, those digests); else what is wrong: ``"missing"`` or
    ``"corrupt: ..."``. Reads the whole file only to check digests."""
    actual, blocks = _stored(storage, name)
    if actual is None:
        return MISSING
    if actual != size:
        return f"corrupt: {actual} bytes instead of {size}"
    if not digests:
        return None
    computed, _ = digests_of_blocks(blocks(), list(digests))
    for algorithm, value in digests.items():
        if computed.get(algorithm) != value:
            return f"corrupt: {algorithm} differs"
    return None


def stored_sizes(storage, names: Sequence[str]) -> dict[str, int | None]:
    """``{name: its size in storage, or None when it is not there}`` for ``names``, reading no
    file: one ``stat`` per local file; in object storage one HEAD per object or, for many, a
    listing of their directories (:meth:`ObjectStore.sizes`); else the storage's
    ``exists()``/``size()``."""
    root = local_storage_path(storage, "")
    if root is not None:
        sizes: dict[str, int | None] = {}
        for name in names:
            try:
                sizes[name] = os.stat(root / name).st_size
            except (FileNotFoundError, NotADirectoryError):
                sizes[name] = None
        return sizes
    objects = ObjectStore.of(storage)
    if objects is not None:
        return objects.sizes(names)
    return {name: storage.size(name) if storage.exists(name) else None for name in names}


def _stored(storage, name: str) -> tuple[int | None, Callable[[], Iterator[bytes]]]:
    """The stored size of ``name`` (``None``: not there) and a reader of its bytes."""
    local = local_storage_path(storage, name)
    if local is not None:
        def read_local() -> Iterator[bytes]:
            with open(local, "rb") as fh:
                yield from iter(lambda: fh.read(BLOCK_SIZE), b"")

        try:
            return os.stat(local).st_size, read_local
        except FileNotFoundError:
            return None, read_local
    objects = ObjectStore.of(storage)
    if objects is not None:
        def read_object() -> Iterator[bytes]:
            body = objects.get(name, 0, stored_size) if stored_size else None
            if body is not None:
                try:
                    yield from body.iter_chunks(BLOCK_SIZE)
                finally:
                    body.close()

        stored_size = objects.size(name)
        return stored_size, read_object

    def read_storage() -> Iterator[bytes]:
        with storage.open(name, "rb") as fh:
            yield from iter(lambda: fh.read(BLOCK_SIZE), b"")

    return (storage.size(name) if storage.exists(name) else None), read_storage
