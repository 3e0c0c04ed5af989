"""Authentication as a flow: basic credentials, and bearer tokens from a challenge.

An auth flow (:meth:`RemoteAuth.auth_flow`, after httpx's ``Auth.auth_flow``) is an async
generator that yields the requests to send (:class:`AuthRequest`) and receives each answer
(:class:`AuthResponse`); the answer to the last request it yields is the caller's. It knows
nothing of sessions, connections or the download context: whoever drives it sends the
requests (``HttpDownloader._request``).

A server that answers ``401`` with ``WWW-Authenticate: Bearer realm="...",service="...",
scope="..."`` gets a token fetched from ``realm`` (with the remote's credentials, if any),
cached per (realm, service, scope) and shared by every downloader of the factory: concurrent
downloads that hit the same challenge wait for one token request.
"""
from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from multidict import CIMultiDictProxy

from .config import Secret
from .exceptions import NotAuthorized, TokenError, http_error, size_text
from .headers import has_control_characters
from .origins import Origin, TrustedOrigins, origin_of

__all__ = ["MAX_TOKEN_ANSWER", "AuthFlow", "AuthRequest", "AuthResponse", "BearerChallenge",
           "RemoteAuth", "parse_bearer_challenge"]

#: Largest answer of a token endpoint read (bytes): tokens are a few kilobytes at most, and
#: one is sent back as a header (servers refuse headers past 8 to 64 KiB).
MAX_TOKEN_ANSWER = 64 * 1024

#: ``authorize(hop_url)``: the ``Authorization`` a hop of a request gets (``None``: none).
Authorize = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A request an auth flow wants sent: ``method url`` with ``headers``, each hop
    (redirects included) getting the ``Authorization`` that ``authorize(hop_url)`` says.
    With ``read_limit``, the body of an answer below 400 is read, up to that many bytes."""

    method: str
    url: str
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    authorize: Authorize | None = None
    read_limit: int | None = None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """The answer to an :class:`AuthRequest`: its ``status``, the ``url`` of the hop that
    answered and its ``headers``, the ``Authorization`` that hop was sent, and (for a
    request with ``read_limit``, below 400) the ``body``: ``None`` when it was larger than
    the limit (then not read past it)."""

    status: int
    url: str
    headers: CIMultiDictProxy[str]
    sent_authorization: str | None = None
    body: bytes | None = None


#: What :meth:`RemoteAuth.auth_flow` returns.
AuthFlow = AsyncGenerator[AuthRequest, AuthResponse]

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
        self._tokens: dict[_TokenKey, tuple[str, float]] = {}
        self._challenge_for_origin: dict[Origin, _TokenKey] = {}
        self._lock = threading.Lock()
        #: Per event loop, one lock per token key: one token request at a time.
        self._token_locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[_TokenKey, asyncio.Lock]] = (
            weakref.WeakKeyDictionary())
        self.token_requests = 0  # observable, for tests and diagnostics

    @property
    def has_credentials(self) -> bool:
        return bool(self.username and self.password)

    def _basic(self) -> str:
        raw = f"{self.username}:{self.password.reveal()}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def authorization(self, url: str) -> str | None:
        """The ``Authorization`` header to send to ``url``: a token a challenge from its
        origin obtained, else the remote's credentials (trusted origins only)."""
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

    async def auth_flow(self, request: AuthRequest) -> AuthFlow:
        """Send ``request`` with what each hop may receive (:meth:`authorization`); after a
        ``401`` with a bearer challenge, fetch a token (or take the one another download
        just fetched) and send ``request`` once more. Any other answer is the caller's.

        A token that the server just refused is dropped and fetched anew once. The token
        endpoint's refusal raises :class:`NotAuthorized`, its other errors an
        :class:`HttpError`, an unusable answer a :class:`TokenError`.
        """
        request = AuthRequest(request.method, request.url, request.headers,
                              self.authorization, request.read_limit)
        response = yield request
        if response.status != 401:
            return
        challenge = parse_bearer_challenge(response.headers.getall("WWW-Authenticate", []))
        if challenge is None:
            return
        with_credentials = self.has_credentials and response.url in self.trusted
        key: _TokenKey = (*challenge.key, with_credentials)
        sent = response.sent_authorization
        with self._lock:
            self._challenge_for_origin[origin_of(response.url)] = key
            cached = self._tokens.get(key)
            if cached and sent == f"Bearer {cached[0]}":
                del self._tokens[key]  # the server refused this token
        async with self._token_lock(key):
            with self._lock:
                cached = self._tokens.get(key)
            if not (cached and cached[1] > time.monotonic() and sent != f"Bearer {cached[0]}"):
                self.token_requests += 1
                answer = yield self._token_request(challenge, with_credentials)
                token, lifetime = _token_from(challenge, answer)
                with self._lock:
                    self._tokens[key] = (token, time.monotonic() + max(lifetime - 10, 1))
        # The token now cached for that origin is what authorization() sends there.
        yield request

    def _token_lock(self, key: _TokenKey) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._lock:
            return self._token_locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())

    def _token_request(self, challenge: BearerChallenge, with_credentials: bool
                       ) -> AuthRequest:
        """The request for a token from the challenge's realm."""
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

        return AuthRequest("GET", realm, authorize=authorize, read_limit=MAX_TOKEN_ANSWER)


_TokenKey = tuple[str, str, str, bool]


def _token_from(challenge: BearerChallenge, answer: AuthResponse) -> tuple[str, float]:
    """The token and its lifetime (seconds) from the token endpoint's ``answer``."""
    if answer.status in (401, 403):
        raise NotAuthorized(challenge.realm, answer.status, "token request refused")
    if answer.status >= 400:
        raise http_error(challenge.realm, answer.status, "token request failed")
    if answer.body is None:
        raise TokenError(challenge.realm, f"token endpoint answered more than "
                                          f"{MAX_TOKEN_ANSWER} bytes "
                                          f"({size_text(MAX_TOKEN_ANSWER)})")
    try:
        body = json.loads(answer.body)
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
