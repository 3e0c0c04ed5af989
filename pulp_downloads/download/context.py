"""The state shared by every downloader of one factory.

One :class:`DownloadContext` per factory holds the aiohttp session and its connection pool,
the TLS context, proxy settings, the rate limiter, the auth token cache, and the mirror list
with each mirror's health. aiohttp sessions and asyncio primitives belong to one event loop,
so those live in a :class:`LoopState` per running loop (normally there is exactly one; sync
callers using ``fetch()`` get a short-lived one that is closed when their call returns).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp

from .addresses import AddressDenied
from .answers import MAX_MIRRORLIST_SIZE, read_bounded, read_file_bounded
from .auth import RemoteAuth
from .bandwidth import BandwidthCap, BandwidthCaps, process_cap
from .defaults import BLOCK_SIZE
from .events import DownloadEvents, RetryHook, retry_hook
from .exceptions import AnswerTooLarge, DownloadError, HttpError, redact_url
from .headers import check_headers, redirect_target
from .origins import TrustedOrigins
from .config import LibrarySettings, RemoteConfig, RetryPolicy
from .fileurls import confine_to_roots, file_url_to_path
from .metalink import MetalinkError, is_metalink, parse_metalink
from .mirrors import MirrorSet, parse_mirrorlist
from .ratelimit import RateLimiter
from .tls import build_ssl_context

log = logging.getLogger(__name__)

USER_AGENT = f"pulp_downloads/0.1 aiohttp/{aiohttp.__version__}"
#: Redirects followed per request (as browsers and aiohttp do by default).
MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class LoopState:
    """Per-event-loop part of a context: session, concurrency slots, locks."""

    def __init__(self, context: "DownloadContext") -> None:
        self._context = context
        self.session: aiohttp.ClientSession | None = None
        self.slots = asyncio.Semaphore(context.config.download_concurrency)
        self.mirrorlist_lock = asyncio.Lock()
        self.fetch_users = 0
        self.owned_by_fetch = False

    async def get_session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = self._context._new_session()
        return self.session

    async def close(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()
        self.session = None


class DownloadContext:
    """Shared, long-lived download state of one remote (see module docstring)."""

    def __init__(
        self,
        config: RemoteConfig,
        settings: LibrarySettings,
        retry_policy: RetryPolicy,
        *,
        events: DownloadEvents | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.retry_policy = retry_policy
        self.events = events
        #: The event sink's optional ``retried`` (see :func:`~.events.retry_hook`).
        self.on_retry: RetryHook | None = retry_hook(events) if events is not None else None
        self.executor = executor
        #: Origins that receive the remote's credentials, client certificate and headers.
        self.trusted = TrustedOrigins([config.url, *config.mirrors, config.mirrorlist_url])
        self.ssl = build_ssl_context(config)
        #: For other origins: the same trust, no client certificate.
        self.ssl_untrusted = (build_ssl_context(config, client_cert=False)
                              if config.client_cert else self.ssl)
        self.auth = RemoteAuth(config.username, config.password, self.trusted,
                               config.bearer_token)
        self.limiter = RateLimiter(config.rate_limit)
        #: The remote's cap (shared by this factory's downloads) and the process's.
        self.bandwidth = BandwidthCaps(BandwidthCap(config.max_bandwidth),
                                       process_cap(settings.max_bandwidth))
        self.mirrors = MirrorSet(config.url, list(config.mirrors), retry_policy.mirror_cooldown,
                                 ranking=settings.mirror_ranking)
        #: ``{relative path: {algorithm: hex}}`` from a Metalink mirror list, once resolved.
        self.mirrorlist_hashes: dict[str, dict[str, str]] = {}
        self._mirrorlist_resolved = not config.mirrorlist_url
        #: After a failed mirror-list fetch, when to try again (monotonic seconds).
        self._mirrorlist_retry_at = 0.0
        self._states: dict[asyncio.AbstractEventLoop, LoopState] = {}
        self._states_lock = threading.Lock()
        self._proxy_kwargs: dict[str, Any] = {}
        if config.proxy_url:
            self._proxy_kwargs["proxy"] = config.proxy_url
            if config.proxy_username:
                credentials = aiohttp.encode_basic_auth(
                    config.proxy_username, config.proxy_password.reveal()
                )
                self._proxy_kwargs["proxy_headers"] = {"Proxy-Authorization": credentials}
        self.base_headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        if settings.via:
            self.base_headers["Via"] = f"1.1 {settings.via}"
        #: The remote's extra headers: sent to trusted origins only.
        self.custom_headers = dict(config.headers)

    # --- per-loop state --------------------------------------------------------------------
    def loop_state(self) -> LoopState:
        """The state of the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        state = self._states.get(loop)  # fast path: a single dict read is atomic
        if state is not None:
            return state
        with self._states_lock:
            state = self._states.get(loop)
            if state is None:
                # Forget states of loops that are gone (their sessions died with them).
                for old in [lp for lp in self._states if lp.is_closed()]:
                    del self._states[old]
                state = self._states[loop] = LoopState(self)
        return state

    async def session(self) -> aiohttp.ClientSession:
        """The aiohttp session of the running loop."""
        return await self.loop_state().get_session()

    def _new_session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.config.download_concurrency,
            limit_per_host=0,
            ssl=self.ssl,
            ttl_dns_cache=300,
            socket_factory=self.settings.address_policy.socket_factory,
        )
        return aiohttp.ClientSession(
            connector=connector,
            headers=self.base_headers,
            timeout=self.config.timeouts.client_timeout(),
            auto_decompress=False,
            read_bufsize=BLOCK_SIZE,
            trust_env=False,
        )

    def request_kwargs(self, url: str, headers: dict[str, str]) -> dict[str, Any]:
        """Per-request keyword arguments for aiohttp: headers, TLS context and proxy.

        The remote's custom headers and TLS client certificate go to trusted origins only
        (``headers`` given here win over custom ones). Proxy credentials travel in the CONNECT
        request for https targets and in the request itself (to the proxy) for http targets.
        """
        kwargs = dict(self._proxy_kwargs)
        if url in self.trusted:
            if self.custom_headers:
                headers = {**self.custom_headers, **headers}
            kwargs["ssl"] = self.ssl
        else:
            kwargs["ssl"] = self.ssl_untrusted
        if "proxy_headers" in kwargs and not url.startswith("https:"):
            headers.update(kwargs["proxy_headers"])
        kwargs["headers"] = headers
        return kwargs

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        authorize: Callable[[str], str | None] | None = None,
    ) -> aiohttp.ClientResponse:
        """Send ``method url``, following redirects hop by hop; returns the open response.

        Each hop gets what its own origin may receive: ``authorize(hop_url)`` supplies its
        ``Authorization`` (or none), and :meth:`request_kwargs` its custom headers, TLS
        client certificate and proxy settings. ``headers`` (e.g. ``Range``) go to every hop.
        Raises :class:`InvalidHeader` for a header that cannot be sent, and
        :class:`InvalidResponse` for a redirect to a malformed URL.
        """
        session = await self.session()
        for _ in range(MAX_REDIRECTS + 1):
            hop_headers = dict(headers)
            authorization = authorize(url) if authorize is not None else None
            if authorization:
                hop_headers["Authorization"] = authorization
            kwargs = self.request_kwargs(url, hop_headers)
            check_headers(url, self.base_headers, kwargs["headers"])
            response = await session.request(method, url, allow_redirects=False, **kwargs)
            location = response.headers.get("Location")
            if response.status not in REDIRECT_STATUSES or not location:
                return response
            response.release()
            url = redirect_target(response.url, location)
            if method not in ("GET", "HEAD"):
                method = "GET"
        raise HttpError(url, None, f"more than {MAX_REDIRECTS} redirects")

    # --- mirrors ---------------------------------------------------------------------------
    async def candidates(self, url: str) -> list[str]:
        """URLs to try for ``url``, best first (resolves the mirror list on first use)."""
        if not self._mirrorlist_resolved and time.monotonic() >= self._mirrorlist_retry_at:
            async with self.loop_state().mirrorlist_lock:
                if not self._mirrorlist_resolved and time.monotonic() >= self._mirrorlist_retry_at:
                    mirrors = await self._fetch_mirrorlist()
                    if mirrors is None:  # failed: configured mirrors only, for a while
                        self._mirrorlist_retry_at = (time.monotonic()
                                                     + self.retry_policy.mirror_cooldown)
                    else:
                        self.mirrors.add(mirrors)
                        self._mirrorlist_resolved = True
        return self.mirrors.candidates(url)

    async def _fetch_mirrorlist(self) -> list[str] | None:
        """The mirror list's base URLs, or ``None`` (with a warning saying why) when it could
        not be fetched or used. At most :data:`~.answers.MAX_MIRRORLIST_SIZE` bytes are read;
        the document is parsed in a worker thread."""
        url = self.config.mirrorlist_url
        limit = MAX_MIRRORLIST_SIZE

        def too_large() -> AnswerTooLarge:
            return AnswerTooLarge(url, limit, "the mirror list")

        loop = asyncio.get_running_loop()
        try:
            content_type, charset = "", None
            if url.startswith("file:"):
                path = confine_to_roots(file_url_to_path(url), self.settings.file_roots)
                raw = await loop.run_in_executor(None, read_file_bounded, path, limit, too_large)
            else:
                async with await self.request("GET", url, {}, self.auth.authorization) as response:
                    if response.status >= 400:
                        log.warning("mirror list %s answered HTTP %s; using configured mirrors",
                                    redact_url(url), response.status)
                        return None
                    content_type = response.headers.get("Content-Type", "")
                    charset = response.charset
                    raw = await read_bounded(response, limit, too_large)
        except AddressDenied as exc:
            log.warning("mirror list %s: %s; using configured mirrors", redact_url(url), exc)
            return None
        except AnswerTooLarge as exc:
            log.warning("mirror list refused: %s; using configured mirrors", exc)
            return None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, DownloadError,
                ValueError) as exc:  # FileUrlError, a malformed URL
            log.warning("mirror list %s could not be fetched (%s); using configured mirrors",
                        redact_url(url), type(exc).__name__)
            return None
        if is_metalink(url, content_type):
            try:
                metalink = await loop.run_in_executor(self.executor, parse_metalink, raw)
            except MetalinkError as exc:
                log.warning("mirror list %s: %s; using configured mirrors", redact_url(url), exc)
                return None
            self.mirrorlist_hashes = metalink.hashes
            mirrors = [mirror.base for mirror in metalink.mirrors]
            log.info("metalink %s: %d mirror(s), hashes of %d file(s)", redact_url(url),
                     len(mirrors), len(metalink.hashes))
            return mirrors
        mirrors = await loop.run_in_executor(self.executor, parse_mirrorlist,
                                             _decoded(raw, charset))
        log.info("mirror list %s: %d mirror(s)", redact_url(url), len(mirrors))
        return mirrors

    # --- lifecycle -------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the running loop's session (and forget other loops' states)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # pragma: no cover - close() is async, a loop always runs
            return
        with self._states_lock:
            states = dict(self._states)
            self._states.clear()
        for state_loop, state in states.items():
            if state_loop is loop:
                await state.close()
            elif not state_loop.is_closed() and state_loop.is_running():
                asyncio.run_coroutine_threadsafe(state.close(), state_loop)

    @contextlib.asynccontextmanager
    async def for_sync_caller(self) -> AsyncIterator[None]:
        """Around a call made from sync code (``fetch()``): if the running loop had no state
        yet (asgiref started a loop for this call), close its session once the last such call
        on that loop is done, so no session outlives its loop."""
        fresh = asyncio.get_running_loop() not in self._states
        state = self.loop_state()
        if fresh:
            state.owned_by_fetch = True
        state.fetch_users += 1
        try:
            yield
        finally:
            state.fetch_users -= 1
            if state.owned_by_fetch and state.fetch_users == 0:
                await state.close()
                with self._states_lock:
                    for loop, known in list(self._states.items()):
                        if known is state:
                            del self._states[loop]


def _decoded(raw: bytes, charset: str | None) -> str:
    """``raw`` as text in ``charset`` (UTF-8 when unknown); undecodable bytes replaced."""
    try:
        return raw.decode(charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", errors="replace")
