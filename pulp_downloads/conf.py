"""The app's settings, read from ``settings.PULP_DOWNLOADS`` and checked each time they are
read: :func:`app_settings` parses them anew at every call (cheap; a test may change them).

Code outside ``download/`` reads settings through :func:`app_settings`; the download library
itself never reads Django settings, it receives these values through its constructors.
"""
from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .download import LibrarySettings
from .download.addresses import DEFAULT_DENIED_NETWORKS, AddressPolicy, parse_networks
from .download import limits
from .download.defaults import DEFAULT_CHECKSUMS
from .download.limits import (DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES,
                              MAX_DOWNLOAD_CONCURRENCY, MAX_RETRIES_LIMIT)
from .download.digests import DIGEST_ALGORITHMS


@dataclass(frozen=True)
class AppSettings:
    """The checked contents of ``settings.PULP_DOWNLOADS``."""

    allowed_checksums: tuple[str, ...]
    file_url_allowed_roots: tuple[Path, ...]
    default_download_concurrency: int
    default_max_retries: int
    working_directory: Path
    orphan_cleanup_age: timedelta
    flush_with_syncfs: bool = True
    address_policy: AddressPolicy = AddressPolicy()
    max_download_concurrency: int = MAX_DOWNLOAD_CONCURRENCY
    public_api_docs: bool = True
    #: This site's ``Via`` pseudonym (see :func:`site_via`).
    via: str = ""
    #: URL prefix of nginx's internal location for the artifact directory; when set, stored
    #: files are sent by nginx through ``X-Accel-Redirect`` (empty: the app sends them).
    content_x_accel_redirect: str = ""
    #: Seconds the content app keeps "this path is that stored file" in memory.
    content_cache_ttl: float = 30.0
    #: Stored files in object storage are answered with a redirect to a presigned URL
    #: (``False``: streamed through the content app).
    redirect_to_object_storage: bool = True
    #: A running task whose heartbeat is older than this is abandoned (its worker stopped).
    task_heartbeat_timeout: timedelta = timedelta(seconds=60)
    #: Bytes per second for all downloads of one process together (``None``: no cap).
    max_bandwidth: int | None = None
    #: A bearer token that may read ``/metrics`` (empty: only users with the permission).
    metrics_token: str = ""
    #: Mirrors ordered by measured speed (``False``: the primary first).
    mirror_ranking: bool = True
    #: Partial downloads kept for resumption are removed once untouched for this long.
    partial_max_age: timedelta = timedelta(days=7)
    #: Seconds a sync's database step is retried for while the database is unavailable
    #: (0: not retried); see :mod:`pulp_downloads.dbretry`.
    database_retry_time: float = 60.0
    #: Where people reach this site, e.g. ``http://127.0.0.1:8000`` (no trailing slash):
    #: the management commands' JSON gives absolute hrefs with it (empty: paths alone).
    base_url: str = ""


def app_settings() -> AppSettings:
    """Return the app's settings, raising ``ImproperlyConfigured`` on a bad value."""
    raw = dict(getattr(settings, "PULP_DOWNLOADS", {}) or {})
    checksums = tuple(raw.get("ALLOWED_CONTENT_CHECKSUMS", DEFAULT_CHECKSUMS))
    unknown = [name for name in checksums if name not in DIGEST_ALGORITHMS]
    if unknown:
        raise ImproperlyConfigured(
            f"PULP_DOWNLOADS['ALLOWED_CONTENT_CHECKSUMS'] names unknown algorithm(s) {unknown}; "
            f"choose from {list(DIGEST_ALGORITHMS)}"
        )
    if "sha256" not in checksums:
        raise ImproperlyConfigured(
            "PULP_DOWNLOADS['ALLOWED_CONTENT_CHECKSUMS'] must include sha256 "
            "(Artifacts are identified by it)"
        )
    for name in checksums:
        hashlib.new(name)  # raises ValueError early if this Python lacks it
    ordered = tuple(name for name in DIGEST_ALGORITHMS if name in checksums)

    roots = tuple(
        Path(os.path.realpath(os.path.abspath(root)))
        for root in raw.get("FILE_URL_ALLOWED_ROOTS", ())
    )
    concurrency = int(raw.get("DEFAULT_DOWNLOAD_CONCURRENCY", DEFAULT_CONCURRENCY))
    retries = int(raw.get("DEFAULT_MAX_RETRIES", DEFAULT_MAX_RETRIES))
    if concurrency < 1:
        raise ImproperlyConfigured("PULP_DOWNLOADS['DEFAULT_DOWNLOAD_CONCURRENCY'] must be >= 1")
    if not 0 <= retries <= MAX_RETRIES_LIMIT:
        raise ImproperlyConfigured(
            f"PULP_DOWNLOADS['DEFAULT_MAX_RETRIES'] must be from 0 to {MAX_RETRIES_LIMIT}")
    flush_with_syncfs = raw.get("FLUSH_WITH_SYNCFS", True)
    if not isinstance(flush_with_syncfs, bool):
        raise ImproperlyConfigured("PULP_DOWNLOADS['FLUSH_WITH_SYNCFS'] must be True or False")
    working = raw.get("WORKING_DIRECTORY") or os.path.join(settings.MEDIA_ROOT, ".working")
    networks = {}
    for key, default in (("DENIED_NETWORKS", DEFAULT_DENIED_NETWORKS), ("ALLOWED_NETWORKS", ())):
        try:
            networks[key] = parse_networks(raw.get(key, default), setting=f"PULP_DOWNLOADS[{key!r}]")
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(str(exc)) from None
    max_concurrency = int(raw.get("MAX_DOWNLOAD_CONCURRENCY", MAX_DOWNLOAD_CONCURRENCY))
    if max_concurrency < 1:
        raise ImproperlyConfigured("PULP_DOWNLOADS['MAX_DOWNLOAD_CONCURRENCY'] must be >= 1")
    concurrency = limits.concurrency(concurrency, default=DEFAULT_CONCURRENCY,
                                     cap=max_concurrency)
    return AppSettings(
        allowed_checksums=ordered,
        file_url_allowed_roots=roots,
        default_download_concurrency=concurrency,
        default_max_retries=retries,
        working_directory=Path(working),
        orphan_cleanup_age=timedelta(seconds=float(raw.get("ORPHAN_CLEANUP_AGE", 900))),
        flush_with_syncfs=flush_with_syncfs,
        address_policy=_address_policy(networks["DENIED_NETWORKS"], networks["ALLOWED_NETWORKS"]),
        max_download_concurrency=max_concurrency,
        public_api_docs=bool(raw.get("PUBLIC_API_DOCS", True)),
        via=site_via(settings.SECRET_KEY),
        task_heartbeat_timeout=_positive_seconds(raw, "TASK_HEARTBEAT_TIMEOUT", 60),
        content_x_accel_redirect=_x_accel_prefix(raw.get("CONTENT_X_ACCEL_REDIRECT") or ""),
        content_cache_ttl=_positive_seconds(raw, "CONTENT_CACHE_TTL", 30).total_seconds(),
        redirect_to_object_storage=bool(raw.get("REDIRECT_TO_OBJECT_STORAGE", True)),
        max_bandwidth=_bandwidth(raw.get("MAX_BANDWIDTH")),
        metrics_token=str(raw.get("METRICS_TOKEN") or ""),
        mirror_ranking=bool(raw.get("MIRROR_RANKING", True)),
        partial_max_age=_positive_seconds(raw, "PARTIAL_MAX_AGE", 7 * 86400),
        database_retry_time=_seconds_at_least_zero(raw, "DATABASE_RETRY_TIME", 60),
        base_url=_base_url(raw.get("BASE_URL", os.environ.get("PULP_DOWNLOADS_BASE_URL", ""))),
    )


def _base_url(value) -> str:
    """``PULP_DOWNLOADS['BASE_URL']`` (or ``PULP_DOWNLOADS_BASE_URL``): an http(s) URL of
    scheme, host, optional port and optional path prefix; returned without a trailing
    slash. Empty: none."""
    text = str(value or "").strip()
    if not text:
        return ""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment or parts.username or parts.password:
        raise ImproperlyConfigured(
            "PULP_DOWNLOADS_BASE_URL must be where people reach this site, e.g. "
            f"http://127.0.0.1:8000 (http or https, a host, no query), got {text!r}")
    return text.rstrip("/")


#: The lowest bandwidth cap accepted (the site's and a Remote's), in bytes per second.
MIN_BANDWIDTH = 1024


def _bandwidth(value) -> int | None:
    """``PULP_DOWNLOADS['MAX_BANDWIDTH']``: bytes per second, or empty for no cap."""
    if value in (None, "", 0, "0"):
        return None
    try:
        rate = int(value)
    except (TypeError, ValueError):
        rate = 0
    if rate < MIN_BANDWIDTH:
        raise ImproperlyConfigured(
            f"PULP_DOWNLOADS['MAX_BANDWIDTH'] must be a whole number of bytes per second of at "
            f"least {MIN_BANDWIDTH} (or empty for no cap), got {value!r}")
    return rate


def library_settings() -> LibrarySettings:
    """The download library's settings for this site."""
    conf = app_settings()
    return LibrarySettings(
        allowed_checksums=conf.allowed_checksums,
        file_roots=conf.file_url_allowed_roots,
        working_directory=conf.working_directory,
        address_policy=conf.address_policy,
        via=conf.via,
        max_bandwidth=conf.max_bandwidth,
        mirror_ranking=conf.mirror_ranking,
    )


def _x_accel_prefix(value: str) -> str:
    if value and not (value.startswith("/") and value.endswith("/")):
        raise ImproperlyConfigured(
            "PULP_DOWNLOADS['CONTENT_X_ACCEL_REDIRECT'] must be a URL path that starts and ends "
            "with '/', e.g. '/protected-artifacts/'")
    return value


def _positive_seconds(raw: dict, key: str, default: float) -> timedelta:
    try:
        seconds = float(raw.get(key, default))
    except (TypeError, ValueError):
        seconds = -1
    if not seconds > 0:
        raise ImproperlyConfigured(f"PULP_DOWNLOADS[{key!r}] must be a number of seconds > 0")
    return timedelta(seconds=seconds)


def _seconds_at_least_zero(raw: dict, key: str, default: float) -> float:
    try:
        seconds = float(raw.get(key, default))
    except (TypeError, ValueError):
        seconds = -1
    if not 0 <= seconds < float("inf"):
        raise ImproperlyConfigured(f"PULP_DOWNLOADS[{key!r}] must be a number of seconds >= 0")
    return seconds


@functools.lru_cache(maxsize=4)
def site_via(secret_key: str) -> str:
    """A pseudonym shared by every process of one deployment (derived from ``SECRET_KEY``,
    which it does not reveal), sent as ``Via`` so that the content app can refuse requests
    that its own downloads sent back to it."""
    digest = hashlib.sha256(b"pulp_downloads via:" + secret_key.encode()).hexdigest()
    return f"pulp-downloads-{digest[:16]}"


@functools.lru_cache(maxsize=16)
def _address_policy(denied: tuple, allowed: tuple) -> AddressPolicy:
    return AddressPolicy(denied, allowed)
