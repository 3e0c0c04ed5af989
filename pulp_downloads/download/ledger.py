"""ByteLedger: the one count of a download's bytes that decides where a resume starts."""
from __future__ import annotations

from .digests import Digester


class ByteLedger:
    """How many bytes of one download every consumer has processed.

    Invariant: :attr:`offset` is the number of bytes that the writer has written *and* every
    digest of :attr:`digester` has hashed, in order, from the first byte. Nothing else counts
    a download's bytes: a resumed request asks for bytes from :attr:`offset`, the size a
    :class:`~.result.DownloadResult` reports is :attr:`offset`, and its digests are those of
    :attr:`digester`, so they describe exactly the bytes the writer wrote.

    Only :class:`~.pipeline.BlockPipeline` advances it (:meth:`settle`), once every consumer
    took the bytes: when an attempt ends, queued blocks are drained into every consumer first.
    When the consumers may disagree (one of them failed, or a hand-off was cut short by a
    cancel), the pipeline calls :meth:`doubt` instead, and the next attempt starts again from
    byte 0 (:meth:`restart`, with the writer's ``reset()``).
    """

    def __init__(self, digester: Digester) -> None:
        self.digester = digester
        self._offset = 0
        self._in_doubt = False

    @property
    def offset(self) -> int:
        """Bytes processed by every consumer (see the class docstring)."""
        return self._offset

    @property
    def in_doubt(self) -> bool:
        """Whether the consumers may disagree: the download must start again from byte 0."""
        return self._in_doubt

    def settle(self, count: int) -> None:
        """``count`` more bytes were processed by the writer and every digest."""
        if count < 0:
            raise ValueError("a ledger only moves forward")
        self._offset += count

    def doubt(self) -> None:
        """The consumers may have processed different bytes: trust none of them."""
        self._in_doubt = True

    def restart(self) -> None:
        """Back to byte 0 (the caller resets the writer): fresh digests, nothing in doubt."""
        self.digester.reset()
        self._offset = 0
        self._in_doubt = False
