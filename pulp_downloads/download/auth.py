"""Authentication strategies: basic credentials, and bearer tokens from a challenge.

A server that answers ``401`` with ``WWW-Authenticate: Bearer realm="...",service="...",
scope="..."`` gets a token fetched from ``realm`` (with the remote's credentials, if any),
cached per (realm, service, scope) and shared by every downloader of the factory: concurrent
downloads that hit the same challenge wait for one token request.
"""
from __future__ import annotations

import base64
import json
import re
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from .answers import read_bounded
from .config import Secret
from .exceptions import NotAuthorized, TokenError, http_error, size_text, translated
from .headers import has_control_characters
from .origins import TrustedOrigins, origin_of

#: Largest answer of a token endpoint read (bytes): tokens are a few kilobytes at most, and
#: one is sent back as a header (servers refuse headers past 8 to 64 KiB).
MAX_TOKEN_ANSWER = 64 * 1024


class _Requester(Protocol):
    """What token fetching needs of a download context."""

    def loop_state(self) -> Any: ...

    async def request(self, method: str, url: str, headers: dict[str, str],
                      authorize: Any = None) -> Any: ...

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


class RemoteAuth:
    """The remote's credentials and its token cache (thread-safe; tokens shared across loops).

    Credentials (basic, or a static bearer token) go only to ``trusted`` origins: the remote's
    URL and its configured mirrors, never mirrors learnt from a mirror list nor redirect
    targets elsewhere. A bearer challenge is answered with the credentials only when it came
    from a trusted origin; elsewhere a token is requested anonymously, and tokens obtained
    with credentials are never sent to an untrusted origin.
    """

    def __init__(
        self,
        username: str,
        password: Secret,
        trusted: TrustedOrigins,
        bearer_token: Secret | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.bearer_token = bearer_token or Secret("")
        self.trusted = trusted
        # (realm, service, scope, with_credentials) -> (token, expiry)
        self._tokens: dict[tuple, tuple[str, float]] = {}
        self._challenge_for_origin: dict[tuple, tuple] = {}  # origin -> token key
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
        origin = origin_of(url)
        if self._challenge_for_origin:
            with self._lock:
                key = self._challenge_for_origin.get(origin)
                token = self._tokens.get(key) if key else None
            if token and token[1] > time.monotonic():
                return f"Bearer {token[0]}"
        if url not in self.trusted:
            return None
        if self.bearer_token:
            return f"Bearer {self.bearer_token.reveal()}"
        if self.has_credentials:
            return self._basic()
        return None

    async def answer_challenge(
        self, context: "_Requester", url: str, www_authenticate: list[str], sent: str | None
    ) -> str | None:
        """After a 401 from ``url``: the ``Authorization`` to retry with, or ``None`` to give up.

        ``sent`` is what the failed request carried; a token that was just refused is
        dropped and fetched anew once.
        """
        challenge = parse_bearer_challenge(www_authenticate)
        if challenge is None:
            return None
        with_credentials = self.has_credentials and url in self.trusted
        key = (*challenge.key, with_credentials)
        with self._lock:
            self._challenge_for_origin[origin_of(url)] = key
            cached = self._tokens.get(key)
            if cached and sent == f"Bearer {cached[0]}":
                del self._tokens[key]  # the server refused this token
        lock = context.loop_state().token_lock(key)
        async with lock:
            with self._lock:
                cached = self._tokens.get(key)
            if cached and cached[1] > time.monotonic() and sent != f"Bearer {cached[0]}":
                return f"Bearer {cached[0]}"
            token, lifetime = await self._fetch_token(context, challenge, with_credentials)
            with self._lock:
                self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, 1))
        return f"Bearer {token}"

    async def _fetch_token(
        self, context: "_Requester", challenge: BearerChallenge, with_credentials: bool
    ) -> tuple[str, float]:
        params = {}
        if challenge.service:
            params["service"] = challenge.service
        if challenge.scope:
            params["scope"] = challenge.scope
        realm = challenge.realm
        if params:
            realm += ("&" if "?" in realm else "?") + urlencode(params)
        realm_origin = origin_of(realm)

        def authorize(hop: str) -> str | None:
            # The realm a trusted origin named gets the credentials; a redirect elsewhere not.
            return self._basic() if with_credentials and origin_of(hop) == realm_origin else None

        self.token_requests += 1
        with translated(challenge.realm):
            async with await context.request("GET", realm, {}, authorize) as response:
                if response.status in (401, 403):
                    raise NotAuthorized(challenge.realm, response.status, "token request refused")
                if response.status >= 400:
                    raise http_error(challenge.realm, response.status, "token request failed")
                raw = await read_bounded(response, MAX_TOKEN_ANSWER, lambda: TokenError(
                    challenge.realm, f"token endpoint answered more than {MAX_TOKEN_ANSWER} "
                                     f"bytes ({size_text(MAX_TOKEN_ANSWER)})"))
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            raise TokenError(challenge.realm, "token endpoint did not return JSON") from None
        if not isinstance(body, dict):
            raise TokenError(challenge.realm, "token endpoint did not return a JSON object")
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TokenError(challenge.realm, "token endpoint returned no token")
        if has_control_characters(token):
            raise TokenError(challenge.realm, "token endpoint returned a token holding control "
                                              "characters (CR, LF, NUL, ...)")
        expires_in = body.get("expires_in")
        try:
            lifetime = 60.0 if expires_in is None else float(expires_in)
        except (TypeError, ValueError):
            raise TokenError(challenge.realm, "token endpoint returned a non-numeric "
                                              "expires_in") from None
        except OverflowError:  # an integer beyond any float
            lifetime = float("inf")
        if not lifetime > 0 or lifetime == float("inf"):
            raise TokenError(challenge.realm, "token endpoint returned an expires_in that is "
                                              "not a positive number of seconds (or too large)")
        return token, lifetime
