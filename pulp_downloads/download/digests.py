"""Digests of a byte stream (fed by :class:`~.pipeline.BlockPipeline`)."""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

class Digester:
    """The digests (for ``algorithms``) and size of everything fed so far.

    ``hashers`` are plain hashlib objects; :class:`~.pipeline.BlockPipeline` feeds them,
    possibly from worker threads, each strictly in order.
    """

    def __init__(self, algorithms: Iterable[str]) -> None:
        self.algorithms = tuple(algorithms)
        self.reset()

    def reset(self) -> None:
        """Forget everything fed so far."""
        self.hashers = [hashlib.new(name) for name in self.algorithms]
        self.size = 0

    def hexdigests(self) -> dict[str, str]:
        """The digests of everything fed so far."""
        return {name: h.hexdigest() for name, h in zip(self.algorithms, self.hashers)}
