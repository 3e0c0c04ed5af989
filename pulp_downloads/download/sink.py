"""ArtifactSink: the one way a download hands its validated bytes to whoever stores them.

A caller that wants a download stored gives ``DownloaderFactory.build(..., store=sink)``. The
library then talks to the sink at two moments, and at no other:

1. when the downloader is built, and only if the caller gave no ``writer``, it asks
   :meth:`ArtifactSink.writer_for` where the bytes should go, telling it what it knows of
   the file to come (:class:`SinkRequest`: size, expected digests, working directory). The
   sink answers with a :class:`WriterChoice` (a writer, and the digests to compute) or
   ``None`` for the library's default (a temporary file, every allowed digest);
2. when the download validated (size, digests, validators), it hands the
   :class:`~.result.DownloadResult` to :meth:`ArtifactSink.accept`, before the
   ``finished`` event. From then on the result's file (``result.path``) or content belongs to
   the sink: the download no longer removes it, whatever happens after. What ``accept``
   returns is set as ``result.artifact`` (the Django app's stores return the ``Artifact``,
   or ``None`` when the result is stored later, in a batch).

Whatever the sink raises fails the download with a :class:`~.exceptions.CallbackError` (the
exception is its ``__cause__``). A sink that raises from ``accept`` must leave
``result.path`` as it found it, or set it to ``None`` if it disposed of the file; the
download then removes what is left.

The library knows nothing else of storing: it never imports the app, and a sink needs no
Django either (a test's sink may keep results in a list).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from .result import DownloadResult
from .writers import Writer

__all__ = ["ArtifactSink", "SinkRequest", "WriterChoice"]


@dataclass(frozen=True, slots=True)
class SinkRequest:
    """What a sink is told when asked for a writer: the download's URL, its expected size
    (``None``: unknown) and digests (``{algorithm: hex}``, lower-case), and the working
    directory of the factory's settings (``None``: the system's temporary directory), where
    temporary files belong."""

    url: str
    expected_size: int | None
    expected_digests: Mapping[str, str]
    working_directory: Path | None


@dataclass(frozen=True, slots=True)
class WriterChoice:
    """A sink's answer to :meth:`ArtifactSink.writer_for`: the ``writer`` the download
    writes to, and the ``digests`` it computes (``None``: every allowed algorithm; it must
    include the algorithms of the expected digests). Digests given to ``build()`` win."""

    writer: Writer
    digests: tuple[str, ...] | None = None


@runtime_checkable
class ArtifactSink(Protocol):
    """Where validated downloads are stored (see the module docstring)."""

    def writer_for(self, request: SinkRequest) -> WriterChoice | None:
        """The writer (and digests) for the download described by ``request``, or ``None``
        for the library's default. Called once, when the downloader is built, and only when
        ``build()`` was given no writer. Must not block."""
        ...

    async def accept(self, result: DownloadResult) -> object:
        """Take the validated ``result`` (its file or content) for storing; return what it
        became (set as ``result.artifact``), or ``None`` when it is stored later."""
        ...
