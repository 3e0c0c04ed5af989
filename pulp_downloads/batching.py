"""Splitting long lists for bulk database statements."""
from __future__ import annotations

from collections.abc import Iterator, Sequence

#: Rows or parameters per statement: well under every backend's limit on bound variables.
BATCH_SIZE = 500


def chunks(items: Sequence, size: int = BATCH_SIZE) -> Iterator[Sequence]:
    """``items`` in consecutive slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start:start + size]
