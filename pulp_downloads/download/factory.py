"""DownloaderFactory: a Remote in, configured downloaders out, one shared context."""
from __future__ import annotations

import dataclasses
import enum
import warnings
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from . import limits
from .base import BaseDownloader, OnHeaders, Progress, Validator
from .config import LibrarySettings, RemoteConfig, RemoteLike, RetryPolicy
from .context import DownloadContext
from .events import DownloadEvents
from .exceptions import DownloadError, UnsupportedURL
from .file import FileDownloader
from .http import HttpDownloader
from .limits import DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES
from .sink import ArtifactSink
from .writers import Writer


@dataclass(frozen=True)
class FactoryDefaults:
    """What a :class:`DownloaderFactory` uses where its caller gives nothing: the site's
    settings, the limits for a Remote that leaves them empty, the event sink, and the store
    behind the deprecated ``build(save_artifact=True)``."""

    settings: LibrarySettings = field(default_factory=LibrarySettings)
    download_concurrency: int = DEFAULT_CONCURRENCY
    max_retries: int = DEFAULT_MAX_RETRIES
    #: No Remote gets more concurrent downloads than this (``None``: no cap).
    max_download_concurrency: int | None = None
    #: Makes the event sink of each factory (``None``: no events).
    events: Callable[[], DownloadEvents] | None = None
    #: Makes the store of a download built with ``save_artifact=True`` (``None``: none;
    #: such a build then fails).
    store: Callable[[], ArtifactSink] | None = None


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


class _Unset(enum.Enum):
    UNSET = enum.auto()


class DownloaderFactory:
    """Builds downloaders for one remote; they share one :class:`DownloadContext`.

    ``remote`` is a Remote model instance (read once, never modified; any object with its
    attributes will do, see :class:`~.config.RemoteLike`) or a :class:`RemoteConfig`.
    ``settings`` (allowed checksums, file roots, working directory, ...) and ``events`` (a
    :class:`~.events.DownloadEvents` told of started/finished/failed downloads; ``None`` for
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
        remote: RemoteConfig | RemoteLike,
        *,
        settings: LibrarySettings | None = None,
        retry_policy: RetryPolicy | None = None,
        events: DownloadEvents | None | Literal[_Unset.UNSET] = _Unset.UNSET,
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
        if events is _Unset.UNSET:
            events = defaults.events() if defaults.events is not None else None
        self.config = config
        self._default_store = defaults.store
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
        expected_digests: Mapping[str, str] | None = None,
        expected_size: int | None = None,
        validators: Iterable[Validator] = (),
        writer: Writer | None = None,
        attachment: Any = None,
        progress: Progress | None = None,
        store: ArtifactSink | None = None,
        on_headers: OnHeaders | None = None,
        digests: Iterable[str] | None = None,
        save_artifact: bool = False,
    ) -> BaseDownloader:
        """A downloader for ``url`` (absolute, or relative to :attr:`base_url`).

        ``store`` receives the validated result (see :mod:`.sink`); when no ``writer`` is
        given, it also chooses the writer. ``save_artifact=True`` is a deprecated spelling
        of ``store=`` the installed default store (:attr:`FactoryDefaults.store`; the Django
        app's is ``pulp_downloads.storage.ArtifactStore``).

        Raises :class:`UnsupportedURL` for a malformed URL or a scheme without a downloader,
        :class:`UnsupportedDigest` for an expected digest whose algorithm is not allowed, and
        :class:`DownloadError` for ``save_artifact=True`` with a ``store``, or with no default
        store installed.
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
        if save_artifact:
            warnings.warn("build(save_artifact=True) is deprecated: pass store=, e.g. "
                          "pulp_downloads.storage.ArtifactStore()", DeprecationWarning,
                          stacklevel=2)
            store = self._save_artifact_store(url, store)
        return cls(
            url,
            self.context,
            expected_digests=dict(expected_digests) if expected_digests is not None else None,
            expected_size=expected_size,
            validators=validators,
            writer=writer,
            attachment=attachment,
            progress=progress,
            store=store,
            on_headers=on_headers,
            digests=digests,
        )

    def _save_artifact_store(self, url: str, store: ArtifactSink | None) -> ArtifactSink:
        """The store of a download built with ``save_artifact=True``."""
        if store is not None:
            raise DownloadError(url, "give store= or save_artifact=True, not both")
        if self._default_store is None:
            raise DownloadError(url, "save_artifact=True needs a default store "
                                     "(FactoryDefaults.store): pass store= instead")
        return self._default_store()

    async def close(self) -> None:
        """Close the shared session and connection pool."""
        await self.context.close()

    async def __aenter__(self) -> DownloaderFactory:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, traceback: TracebackType | None) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<DownloaderFactory {self.config.name or self.config.url}>"


__all__ = ["DownloaderFactory", "FactoryDefaults", "factory_defaults", "install_defaults"]
