"""Origins (scheme, host, port) and the set of them a remote's secrets may go to."""
from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

Origin = tuple[str, str, int | None]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> Origin:
    """``(scheme, host, port)`` of ``url``, the default port filled in."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ("", "", None)
    scheme = parts.scheme.lower()
    return (scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme))


class TrustedOrigins:
    """The origins an operator named (the remote's URL and its configured mirrors): the only
    ones that receive the remote's credentials, TLS client certificate and custom headers.
    Mirrors learnt from a mirror list and redirect targets elsewhere are not among them."""

    def __init__(self, urls: Iterable[str]) -> None:
        self._origins = frozenset(origin_of(url) for url in urls if url)

    def __contains__(self, url: str) -> bool:
        return origin_of(url) in self._origins

    def __repr__(self) -> str:
        return f"<TrustedOrigins {len(self._origins)}>"
