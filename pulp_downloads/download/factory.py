"""DownloaderFactory: a Remote in, configured downloaders out, one shared context."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from .base import BaseDownloader
from .config import LibrarySettings, RemoteConfig, RetryPolicy
from . import limits
from .limits import DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES
from .context import DownloadContext
from .exceptions import UnsupportedURL
from .file import FileDownloader
from .http import HttpDownloader

@dataclass(frozen=True)
class FactoryDefaults:
    """What a :class:`DownloaderFactory` uses where its caller gives nothing: the site's
    settings, the limits for a Remote that leaves them empty, and the event sink."""

    settings: LibrarySettings = field(default_factory=LibrarySettings)
    download_concurrency: int = DEFAULT_CONCURRENCY
    max_retries: int = DEFAULT_MAX_RETRIES
    #: No Remote gets more concurrent downloads than this (``None``: no cap).
    max_download_concurrency: int | None = None
    #: Makes the event sink of each factory (``None``: no events).
    events: Callable[[], Any] | None = None


_defaults_provider: Callable[[], FactoryDefaults] = FactoryDefaults


def install_defaults(provider: Callable[[], FactoryDefaults]) -> None:
    """Make ``provider()`` the defaults of every factory created from now on (called once
    per factory, so it may read settings that change). An application installs its own in
    its start-up code; without one, factories use :class:`FactoryDefaults`' plain values."""
    global _defaults_provider
    _defaults_provider = provider


def factory_defaults() -> FactoryDefaults:
    """The defaults a factory created now would use."""
    return _defaults_provider()


_DEFAULT_EVENTS = object()


class DownloaderFactory:
    """Builds downloaders for one remote; they share one :class:`DownloadContext`.

    ``remote`` is a Remote model instance (read once, never modified) or a
    :class:`RemoteConfig`. ``settings`` (allowed checksums, file roots, working directory,
    ...) and ``events`` (an object told of started/finished/failed downloads; ``None`` for
    none) default to the installed :class:`FactoryDefaults` (see :func:`install_defaults`;
    the Django app installs the site's settings and its signals).

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
        events: Any = _DEFAULT_EVENTS,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        defaults = factory_defaults()
        if settings is None:
            settings = defaults.settings
        if isinstance(remote, RemoteConfig):
            config = remote
        else:
            config = RemoteConfig.from_remote(
                remote, default_concurrency=defaults.download_concurrency,
                default_max_retries=defaults.max_retries,
            )
        capped = limits.concurrency(config.download_concurrency, default=DEFAULT_CONCURRENCY,
                                    cap=defaults.max_download_concurrency)
        if capped != config.download_concurrency:
            config = dataclasses.replace(config, download_concurrency=capped)
        if events is _DEFAULT_EVENTS:
            events = defaults.events() if defaults.events is not None else None
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

        Raises :class:`UnsupportedURL` for a malformed URL or a scheme without a downloader, and
        :class:`UnsupportedDigest` for an expected digest whose algorithm is not allowed.
        """
        scheme, sep, _ = url.partition(":")
        if not sep or "/" in scheme:  # relative to the remote's base URL
            try:
                url = urljoin(self.base_url, url)
                scheme = urlsplit(url).scheme
            except ValueError:
                raise UnsupportedURL(url, "malformed URL") from None
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


__all__ = ["DownloaderFactory", "FactoryDefaults", "factory_defaults", "install_defaults"]
