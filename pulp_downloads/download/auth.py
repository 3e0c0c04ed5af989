"""Authentication strategies: basic credentials, and bearer tokens from a challenge.

A server that answers ``401`` with ``WWW-Authenticate: Bearer realm="...",service="...",
scope="..."`` gets a token fetched from ``realm`` (with the remote's credentials, if any),
cached per (realm, service, scope) and shared by every downloader of the factory: concurrent
downloads that hit the same challenge wait for one token request.
"""
from __future__ import annotations

import base64
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp

from .config import Secret
from .exceptions import DownloadError, NotAuthorized, http_error, translated

if TYPE_CHECKING:  # pragma: no cover
    from .context import DownloadContext

_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True)
class BearerChallenge:
    """The parameters of a ``WWW-Authenticate: Bearer`` challenge."""

    realm: str
    service: str = ""
    scope: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.realm, self.service, self.scope)


def parse_bearer_challenge(values: list[str]) -> BearerChallenge | None:
    """The first Bearer challenge among ``WWW-Authenticate`` header values, if any."""
    for value in values:
        scheme, _, rest = value.strip().partition(" ")
        if scheme.lower() != "bearer":
            continue
        params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
                  for m in _PARAM.finditer(rest)}
        params = {k: v.replace('\\"', '"') for k, v in params.items()}
        if params.get("realm"):
            return BearerChallenge(params["realm"], params.get("service", ""),
                                   params.get("scope", ""))
    return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").lower(), parts.port or default)


class RemoteAuth:
    """The remote's credentials and its token cache (thread-safe; tokens shared across loops).

    Basic credentials are sent only to the origins in ``trusted_urls`` (the remote's URL and
    its configured mirrors), never to mirrors learnt from a mirror list.
    """

    def __init__(self, username: str, password: Secret, trusted_urls: list[str]) -> None:
        self.username = username
        self.password = password
        self._trusted = {_origin(url) for url in trusted_urls}
        self._tokens: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._challenge_for_origin: dict[tuple, BearerChallenge] = {}
        self._lock = threading.Lock()
        self.token_requests = 0  # observable, for tests and diagnostics

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.password)

    def _basic(self) -> str:
        raw = f"{self.username}:{self.password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def authorization(self, url: str) -> str | None:
        """The ``Authorization`` header to send to ``url`` before any challenge."""
        if not self._challenge_for_origin and not self.has_credentials:
            return None
        origin = _origin(url)
        with self._lock:
            challenge = self._challenge_for_origin.get(origin)
            token = self._tokens.get(challenge.key) if challenge else None
        if token and token[1] > time.monotonic():
            return f"Bearer {token[0]}"
        if self.has_credentials and origin in self._trusted:
            return self._basic()
        return None

    async def answer_challenge(
        self, context: "DownloadContext", url: str, www_authenticate: list[str], sent: str | None
    ) -> str | None:
        """After a 401: the ``Authorization`` header to retry with, or ``None`` to give up.

        ``sent`` is what the failed request carried; a token that was just refused is
        dropped and fetched anew once.
        """
        challenge = parse_bearer_challenge(www_authenticate)
        if challenge is None:
            return None
        with self._lock:
            self._challenge_for_origin[_origin(url)] = challenge
            cached = self._tokens.get(challenge.key)
            if cached and sent == f"Bearer {cached[0]}":
                del self._tokens[challenge.key]  # the server refused this token
        lock = context.loop_state().token_lock(challenge.key)
        async with lock:
            with self._lock:
                cached = self._tokens.get(challenge.key)
            if cached and cached[1] > time.monotonic() and sent != f"Bearer {cached[0]}":
                return f"Bearer {cached[0]}"
            token, lifetime = await self._fetch_token(context, url, challenge)
            with self._lock:
                self._tokens[challenge.key] = (token, time.monotonic() + max(lifetime - 10, 1))
        return f"Bearer {token}"

    async def _fetch_token(
        self, context: "DownloadContext", url: str, challenge: BearerChallenge
    ) -> tuple[str, float]:
        params = {}
        if challenge.service:
            params["service"] = challenge.service
        if challenge.scope:
            params["scope"] = challenge.scope
        headers = {"Authorization": self._basic()} if self.has_credentials else {}
        self.token_requests += 1
        session = await context.session()
        with translated(challenge.realm):
            async with session.get(
                challenge.realm, params=params, **context.request_kwargs(challenge.realm, headers)
            ) as response:
                if response.status in (401, 403):
                    raise NotAuthorized(challenge.realm, response.status, "token request refused")
                if response.status >= 400:
                    raise http_error(challenge.realm, response.status, "token request failed")
                try:
                    body = await response.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    raise DownloadError(challenge.realm, "token endpoint did not return JSON") from None
        token = (body or {}).get("token") or (body or {}).get("access_token")
        if not token:
            raise DownloadError(challenge.realm, "token endpoint returned no token")
        lifetime = float(body.get("expires_in") or 60)
        return token, lifetime
