"""Plain values the download library is configured with.

:class:`RemoteConfig` is read once from a Remote (any object with the Remote's attributes: the
library never imports the ORM) and is immutable afterwards. Secrets are wrapped in
:class:`Secret` so that printing or logging a configuration never reveals them.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from .addresses import AddressPolicy
from . import limits
from .defaults import DEFAULT_CHECKSUMS, DEFAULT_SOCK_CONNECT_TIMEOUT, DEFAULT_SOCK_READ_TIMEOUT
from .limits import DEFAULT_CONCURRENCY, DEFAULT_MAX_RETRIES

__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_MAX_RETRIES", "DEFAULT_SOCK_CONNECT_TIMEOUT",
           "DEFAULT_SOCK_READ_TIMEOUT", "LibrarySettings", "RemoteConfig", "RemoteLike",
           "RetryPolicy", "Secret", "Timeouts"]


class RemoteLike(Protocol):
    """What :meth:`RemoteConfig.from_remote` needs of a Remote (a model instance, or any
    object): its ``url``. Every other field of :class:`RemoteConfig` is read from the
    attribute of the same name when there is one (a missing or ``None`` one takes the
    default; ``total_timeout``, ``connect_timeout``, ``sock_connect_timeout`` and
    ``sock_read_timeout`` make the :class:`Timeouts`)."""

    @property
    def url(self) -> str: ...


class Secret:
    """A string that is never shown: ``str()``/``repr()`` print ``'***'``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value, for the one place that must send it."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


@dataclass(frozen=True)
class Timeouts:
    """Seconds; ``None`` disables a timeout (a Remote's ``0`` arrives here as ``None``)."""

    total: float | None = None
    connect: float | None = None
    sock_connect: float | None = DEFAULT_SOCK_CONNECT_TIMEOUT
    sock_read: float | None = DEFAULT_SOCK_READ_TIMEOUT

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(
            total=self.total, connect=self.connect,
            sock_connect=self.sock_connect, sock_read=self.sock_read,
        )


#: Backoff stops doubling after this many retries (``2 ** 64`` times any sensible base is
#: far above any cap, and still a finite float).
MAX_BACKOFF_EXPONENT = 64


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, honouring ``Retry-After`` up to a cap."""

    base: float = 0.5
    cap: float = 30.0
    retry_after_cap: float = 120.0
    #: How long a failed mirror is skipped by later downloads of the same factory.
    mirror_cooldown: float = 60.0

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry): at most
        ``cap``, for any ``attempt`` (the exponent stops growing long before it could
        overflow)."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.retry_after_cap))
        exponent = min(attempt - 1, MAX_BACKOFF_EXPONENT)
        return random.uniform(0, min(self.cap, self.base * 2.0 ** exponent))


def _timeout(value: Any, default: float | None) -> float | None:
    if value is None:
        return default
    value = float(value)
    return None if value == 0 else value


@dataclass(frozen=True)
class RemoteConfig:
    """Everything the library needs from a Remote, read once."""

    url: str
    name: str = ""
    ca_cert: str = ""
    client_cert: str = ""
    client_key: Secret = field(default_factory=lambda: Secret(""))
    tls_validation: bool = True
    username: str = ""
    password: Secret = field(default_factory=lambda: Secret(""))
    #: A static token sent as ``Authorization: Bearer ...`` (instead of basic credentials).
    bearer_token: Secret = field(default_factory=lambda: Secret(""))
    proxy_url: str = ""
    proxy_username: str = ""
    proxy_password: Secret = field(default_factory=lambda: Secret(""))
    mirrors: tuple[str, ...] = ()
    mirrorlist_url: str = ""
    download_concurrency: int = DEFAULT_CONCURRENCY
    max_retries: int = DEFAULT_MAX_RETRIES
    rate_limit: float | None = None
    #: Bytes per second for all of this remote's downloads together (``None``: no cap).
    max_bandwidth: int | None = None
    timeouts: Timeouts = Timeouts()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_remote(
        cls,
        remote: RemoteLike,
        *,
        default_concurrency: int = DEFAULT_CONCURRENCY,
        default_max_retries: int = DEFAULT_MAX_RETRIES,
    ) -> "RemoteConfig":
        """Read a Remote (or any object with the same attributes) into a config value."""

        def get(name: str, default: Any = "") -> Any:
            value = getattr(remote, name, default)
            return default if value is None and default is not None else value

        def secret(name: str) -> Secret:
            # str() of a value the app could not decrypt raises its own clear error here,
            # when the secret is about to be used.
            return Secret(str(get(name)))

        return cls(
            url=get("url"),
            name=get("name"),
            ca_cert=get("ca_cert"),
            client_cert=get("client_cert"),
            client_key=secret("client_key"),
            tls_validation=bool(get("tls_validation", True)),
            username=get("username"),
            password=secret("password"),
            bearer_token=secret("bearer_token"),
            proxy_url=get("proxy_url"),
            proxy_username=get("proxy_username"),
            proxy_password=secret("proxy_password"),
            mirrors=tuple(get("mirrors", []) or ()),
            mirrorlist_url=get("mirrorlist_url"),
            download_concurrency=limits.concurrency(get("download_concurrency", None),
                                                    default=default_concurrency),
            max_retries=limits.retries(get("max_retries", None), default=default_max_retries),
            rate_limit=get("rate_limit", None) or None,
            max_bandwidth=get("max_bandwidth", None) or None,
            timeouts=Timeouts(
                total=_timeout(get("total_timeout", None), None),
                connect=_timeout(get("connect_timeout", None), None),
                sock_connect=_timeout(
                    get("sock_connect_timeout", None), DEFAULT_SOCK_CONNECT_TIMEOUT
                ),
                sock_read=_timeout(get("sock_read_timeout", None), DEFAULT_SOCK_READ_TIMEOUT),
            ),
            # str(): a header value the app could not decrypt raises its error here too.
            headers=tuple((name, str(value))
                          for name, value in dict(get("headers", {}) or {}).items()),
        )


@dataclass(frozen=True)
class LibrarySettings:
    """Site-wide settings the factory passes down (from ``settings.PULP_DOWNLOADS``)."""

    allowed_checksums: tuple[str, ...] = DEFAULT_CHECKSUMS
    file_roots: tuple[Path, ...] = ()
    working_directory: Path | None = None
    #: fsync a file downloaded by the default writer before it is handed over (durable on
    #: power loss). Callers with their own durability policy pass their own writer.
    fsync: bool = True
    #: Which peer addresses connections may reach (default: loopback, link-local, multicast
    #: and "this network" denied; see :mod:`.addresses`).
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)
    #: A ``Via`` pseudonym naming this site (``Via: 1.1 <via>`` on every request), by which a
    #: content server recognises requests that loop back to itself. Empty: no ``Via``.
    via: str = ""
    #: Bytes per second for all downloads of this process together (``None``: no cap).
    max_bandwidth: int | None = None
    #: Order mirrors by measured speed and spread new downloads over the fastest (``False``:
    #: the primary first, then the mirrors in their configured order).
    mirror_ranking: bool = True
    #: Makes the hash object of one digest algorithm for a download (``hashlib.new``'s
    #: signature). A test hook: the fault tests slow single digests down through it.
    hasher_factory: Callable[[str], Any] = hashlib.new
