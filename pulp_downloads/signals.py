"""Download events as Django signals, and the app's receivers.

Signals (all sent with ``sender`` = the downloader's class, a ``type[BaseDownloader]``):

``download_started``   kwargs ``downloader`` (the :class:`BaseDownloader`), ``url`` (``str``),
                       ``attachment`` (what was given to ``build()``).
``download_finished``  kwargs ``downloader``, ``result`` (a :class:`DownloadResult`: url,
                       final_url, path, size, digests, headers, attachment, and
                       ``artifact``: what the download's store made of it, if it had one).
                       A download with a store sends it once the store took the result.
``download_failed``    kwargs ``downloader``, ``url``, ``attachment``, ``error`` (a
                       :class:`DownloadError`). Sent for every download that started and
                       did not finish, whatever ended it: an exception the library did not
                       foresee arrives as a ``DownloadError`` (the original is its
                       ``__cause__``), and a cancelled download (its task cancelled, a
                       streaming client gone, the process stopping) as a
                       :class:`~pulp_downloads.download.DownloadCanceled`, although the
                       caller of ``run()`` sees the cancellation itself.

Every download that sent ``download_started`` ends with ``download_finished`` or
``download_failed`` (both, when a ``download_finished`` receiver raised).

They are sent from the event loop with ``Signal.asend()``: async receivers run on the loop,
sync receivers through ``sync_to_async`` (so they may use the ORM). A receiver must not
raise; an exception from a receiver of ``download_started`` or ``download_finished`` fails
the download (a ``CallbackError`` for the caller of ``run()``); one from a receiver of
``download_failed`` is logged.

A sync also sends, from its database thread with ``Signal.send_robust()`` (receivers may use
the ORM; one that raises is logged and the sync goes on):

``artifact_stored``    sender :class:`~pulp_downloads.sync.run.SyncRun`; kwargs ``remote``
                       (:class:`~pulp_downloads.models.Remote`), ``sha256`` (``str``),
                       ``attachment`` (the :class:`~pulp_downloads.sync.ManifestEntry`:
                       ``relative_path``, ``sha256``, ``size``), ``created`` and
                       ``restored`` (``bool``). Once per
                       file of the manifest whose content is stored: ``created=True`` once its
                       batch committed a new Artifact; ``created=False`` when the Artifact was
                       already there (sent once the sync recorded its units; ``restored=True``
                       when its file was missing from storage and the sync put it back).
                       Files that failed (the summary's ``failures``) are not sent.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import Signal

from . import metrics
from .download import Download, DownloadError, DownloadResult

log = logging.getLogger(__name__)

download_started = Signal()
download_finished = Signal()
download_failed = Signal()


class SignalEvents:
    """The download library's event sink (a :class:`~pulp_downloads.download.DownloadEvents`):
    it counts each event in the metrics (:mod:`pulp_downloads.metrics`) and sends the
    signals above."""

    async def started(self, downloader: Download) -> None:
        metrics.download_started(downloader)
        if download_started.has_listeners():
            await download_started.asend(type(downloader), downloader=downloader,
                        url=downloader.url, attachment=downloader.attachment)

    async def finished(self, downloader: Download, result: DownloadResult) -> None:
        metrics.download_ended(downloader, result)
        if download_finished.has_listeners():
            await download_finished.asend(type(downloader), downloader=downloader,
                        result=result)

    async def failed(self, downloader: Download, error: DownloadError) -> None:
        metrics.download_ended(downloader, error=error)
        if download_failed.has_listeners():
            await download_failed.asend(type(downloader), downloader=downloader,
                        url=downloader.url, attachment=downloader.attachment, error=error)

    def retried(self, downloader: Download, error: DownloadError) -> None:
        metrics.download_retried(downloader, error)


def delete_artifact_file(sender: type, instance: Any, **kwargs: Any) -> None:
    """Remove an Artifact's file once its row is gone (after the transaction commits)."""
    from .models import Artifact

    name = instance.file.name
    storage = instance.file.storage

    def remove() -> None:
        if not Artifact.objects.filter(sha256=instance.sha256).exists():
            storage.delete(name)

    transaction.on_commit(remove)


#: See the module docstring.
artifact_stored = Signal()


def connect_receivers() -> None:
    """Connect the app's receivers (called from ``AppConfig.ready()``)."""
    from .models import Artifact

    post_delete.connect(
        delete_artifact_file, sender=Artifact, dispatch_uid="pulp_downloads.artifact_file_cleanup"
    )


__all__ = ["download_started", "download_finished", "download_failed", "artifact_stored",
           "SignalEvents"]
