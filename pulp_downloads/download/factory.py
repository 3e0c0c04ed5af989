"""DownloaderFactory: a Remote in, configured downloaders out, one shared context."""
from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urljoin, urlsplit

from .base import BaseDownloader
from .config import LibrarySettings, RemoteConfig, RetryPolicy
from .context import DownloadContext
from .exceptions import UnsupportedURL
from .file import FileDownloader
from .http import HttpDownloader

_USE_SIGNALS = object()


def site_library_settings() -> LibrarySettings:
    """The library settings of this site (from ``settings.PULP_DOWNLOADS``)."""
    return _settings_from_django()[0]


def _settings_from_django() -> tuple[LibrarySettings, int, int, int | None]:
    """Site settings from ``settings.PULP_DOWNLOADS`` when Django is configured."""
    try:
        from django.conf import settings as django_settings

        configured = django_settings.configured
    except ImportError:  # pragma: no cover - Django is a dependency
        configured = False
    if not configured:
        return LibrarySettings(), 10, 3, None
    from pulp_downloads.conf import app_settings

    conf = app_settings()
    return (
        LibrarySettings(
            allowed_checksums=conf.allowed_checksums,
            file_roots=conf.file_url_allowed_roots,
            working_directory=conf.working_directory,
            address_policy=conf.address_policy,
            via=conf.via,
        ),
        conf.default_download_concurrency,
        conf.default_max_retries,
        conf.max_download_concurrency,
    )


class DownloaderFactory:
    """Builds downloaders for one remote; they share one :class:`DownloadContext`.

    ``remote`` is a Remote model instance (read once, never modified) or a
    :class:`RemoteConfig`. Site settings (allowed checksums, file roots, working directory)
    come from Django settings unless given as ``settings``. ``events`` receives
    started/finished/failed notifications; by default they become the Django signals of
    :mod:`pulp_downloads.signals` (pass ``None`` for none).

    Close the factory when done (``await factory.close()``, or use ``async with``).
    """

    downloader_classes: dict[str, type[BaseDownloader]] = {
        "http": HttpDownloader,
        "https": HttpDownloader,
        "file": FileDownloader,
    }

    def __init__(
        self,
        remote: Any,
        *,
        settings: LibrarySettings | None = None,
        retry_policy: RetryPolicy | None = None,
        events: Any = _USE_SIGNALS,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        site, default_concurrency, default_retries, max_concurrency = _settings_from_django()
        if settings is None:
            settings = site
        if isinstance(remote, RemoteConfig):
            config = remote
        else:
            config = RemoteConfig.from_remote(
                remote, default_concurrency=default_concurrency, default_max_retries=default_retries
            )
        if max_concurrency is not None and config.download_concurrency > max_concurrency:
            config = dataclasses.replace(config, download_concurrency=max_concurrency)
        if events is _USE_SIGNALS:
            from pulp_downloads.signals import SignalEvents

            events = SignalEvents()
        self.config = config
        self.context = DownloadContext(
            config, settings, retry_policy or RetryPolicy(), events=events, executor=executor
        )

    @property
    def base_url(self) -> str:
        """The directory of the remote's URL; relative URLs given to ``build`` resolve here."""
        return self.context.mirrors.primary

    def build(
        self,
        url: str,
        *,
        expected_digests: dict[str, str] | None = None,
        expected_size: int | None = None,
        validators=(),
        writer=None,
        attachment: Any = None,
        progress=None,
        save_artifact: bool = False,
        on_headers=None,
        digests=None,
    ) -> BaseDownloader:
        """A downloader for ``url`` (absolute, or relative to :attr:`base_url`).

        Raises :class:`UnsupportedURL` for a scheme without a downloader and
        :class:`UnsupportedDigest` for an expected digest whose algorithm is not allowed.
        """
        scheme, sep, _ = url.partition(":")
        if not sep or "/" in scheme:  # relative to the remote's base URL
            url = urljoin(self.base_url, url)
            scheme = urlsplit(url).scheme
        scheme = scheme.lower()
        cls = self.downloader_classes.get(scheme)
        if cls is None:
            raise UnsupportedURL(url, f"no downloader for URL scheme {scheme!r}")
        return cls(
            url,
            self.context,
            expected_digests=expected_digests,
            expected_size=expected_size,
            validators=validators,
            writer=writer,
            attachment=attachment,
            progress=progress,
            save_artifact=save_artifact,
            on_headers=on_headers,
            digests=digests,
        )

    async def close(self) -> None:
        """Close the shared session and connection pool."""
        await self.context.close()

    async def __aenter__(self) -> "DownloaderFactory":
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<DownloaderFactory {self.config.name or self.config.url}>"


__all__ = ["DownloaderFactory", "site_library_settings"]
