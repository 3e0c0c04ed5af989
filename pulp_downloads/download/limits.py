"""The default-and-cap rule for a Remote's concurrency and retries, in one place.

A Remote may leave ``download_concurrency`` and ``max_retries`` empty (``None``): the site's
default applies. ``0`` retries is a real value (a single attempt), never "unset". A site
caps every Remote's concurrency (``PULP_DOWNLOADS['MAX_DOWNLOAD_CONCURRENCY']``); retries
are bounded by :data:`MAX_RETRIES_LIMIT` where they are entered (the Remote's validation
and the site's settings).

Used by the factory (a Remote read into a :class:`~.config.RemoteConfig`) and by the app's
settings (``pulp_downloads.conf``). Standard library only.
"""
from __future__ import annotations

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_MAX_RETRIES", "MAX_DOWNLOAD_CONCURRENCY",
           "MAX_RETRIES_LIMIT", "concurrency", "retries"]

#: Simultaneous downloads of a Remote that leaves ``download_concurrency`` empty.
DEFAULT_CONCURRENCY = 10
#: Retries of a failed download when a Remote leaves ``max_retries`` empty.
DEFAULT_MAX_RETRIES = 3
#: The most retries a Remote (or the site default) may ask for.
MAX_RETRIES_LIMIT = 100
#: The site's cap on any Remote's concurrency, unless its settings say otherwise.
MAX_DOWNLOAD_CONCURRENCY = 100


def concurrency(value: int | None, *, default: int, cap: int | None = None) -> int:
    """The concurrency to use: ``value``, or ``default`` when it is ``None``; never more
    than ``cap`` (``None``: no cap)."""
    chosen = default if value is None else int(value)
    return chosen if cap is None else min(chosen, cap)


def retries(value: int | None, *, default: int) -> int:
    """The retries to use: ``value``, or ``default`` when it is ``None`` (``0`` is kept: a
    single attempt)."""
    return default if value is None else int(value)
