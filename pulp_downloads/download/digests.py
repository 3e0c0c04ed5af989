"""Digests of a byte stream (fed by :class:`~.pipeline.BlockPipeline`), of content and of
files: the one digest implementation of the project. Standard library only (the store
helper process loads this module by itself)."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from typing import Any

#: Every digest algorithm an Artifact has a column for, weakest first.
DIGEST_ALGORITHMS: tuple[str, ...] = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
#: Length of each algorithm's hex digest.
HEX_LENGTHS: dict[str, int] = {name: hashlib.new(name).digest_size * 2
                               for name in DIGEST_ALGORITHMS}


class Digester:
    """The digests (for ``algorithms``) and size of everything fed so far.

    ``hashers`` are plain hashlib objects; :class:`~.pipeline.BlockPipeline` feeds them,
    possibly from worker threads, each strictly in order.
    """

    def __init__(self, algorithms: Iterable[str],
                 new: Callable[[str], Any] = hashlib.new) -> None:
        self.algorithms = tuple(algorithms)
        self._new = new
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far."""
        self.hashers = [self._new(name) for name in self.algorithms]
        self.size = 0

    def update(self, data: bytes) -> None:
        """Feed ``data`` to every digest (in this thread)."""
        for hasher in self.hashers:
            hasher.update(data)
        self.size += len(data)

    def hexdigests(self) -> dict[str, str]:
        """The digests of everything fed so far."""
        return {name: h.hexdigest() for name, h in zip(self.algorithms, self.hashers)}


def digests_of(data: bytes, algorithms: Iterable[str]) -> dict[str, str]:
    """The hex digests of ``data`` for ``algorithms``."""
    digester = Digester(algorithms)
    digester.update(data)
    return digester.hexdigests()


def digests_of_blocks(blocks: Iterable[bytes], algorithms: Iterable[str]
                      ) -> tuple[dict[str, str], int]:
    """The hex digests and size of everything in ``blocks``."""
    digester = Digester(algorithms)
    for block in blocks:
        digester.update(block)
    return digester.hexdigests(), digester.size


def digests_of_file(path: str | os.PathLike[str], algorithms: Iterable[str],
                    block_size: int) -> tuple[dict[str, str], int]:
    """The hex digests and size of the file at ``path``, read ``block_size`` bytes at a time."""
    with open(path, "rb") as fh:
        return digests_of_blocks(iter(lambda: fh.read(block_size), b""), algorithms)
