"""Content never scripts the app: what every ``/content/`` answer carries, and what keeps
the rest of the site off the content origin.

A file served under ``/content/`` comes from an upstream nobody here controls: an HTML page or
an SVG with a script would run on this site's origin, with the session of whoever opens it.
Every answer under :data:`PREFIX` (stored files, relayed downloads, ``X-Accel-Redirect``
answers, listings and error pages alike) therefore carries :data:`HEADERS`:

- ``Content-Security-Policy: sandbox``: the browser gives the document an opaque origin of
  its own, runs none of its scripts, submits no forms and opens no pop-ups, so it can neither
  read the API nor send requests with the site's cookies;
- ``X-Content-Type-Options: nosniff``: a file is never taken for a type it was not served as
  (a script or a style sheet disguised as an image).

Two doors apply them: :class:`ContentSecurityMiddleware` for every answer Django gives (WSGI,
and the ASGI requests the fast path hands over), and :func:`secured` for the raw ASGI
messages of :class:`~pulp_downloads.content.asgi.ContentApp`.

With ``PULP_DOWNLOADS_CONTENT_ORIGIN`` set (e.g. ``https://content.example.com``), requests
whose host is that origin's get only ``/content/`` (and ``/status/``); the admin, the API and
every other page answer 404 there, so they can never run beside upstream content on one
origin. (The admin and API also refuse to be framed: ``X-Frame-Options: DENY``.)
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound

PREFIX = "/content/"
#: The headers of every ``/content/`` answer.
HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
_ENCODED = [(name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in HEADERS.items()]
_NAMES = frozenset(name for name, _ in _ENCODED)
#: What a content origin serves besides ``/content/``.
_CONTENT_ORIGIN_PATHS = (PREFIX, "/status/")


class SecuredHeaders(list):
    """ASGI response headers known to carry :data:`HEADERS` (see :func:`secured`)."""

    __slots__ = ()


def secured(headers: Iterable[tuple[bytes, bytes]]) -> SecuredHeaders:
    """ASGI response headers with :data:`HEADERS` set once (replacing any value they had);
    returned as is when they are already :class:`SecuredHeaders` (precomputed answers)."""
    if isinstance(headers, SecuredHeaders):
        return headers
    return SecuredHeaders([*(pair for pair in headers if bytes(pair[0]).lower() not in _NAMES),
                           *_ENCODED])


@functools.lru_cache(maxsize=4)
def content_origin_host(origin: str) -> str:
    """The ``host[:port]`` of ``PULP_DOWNLOADS_CONTENT_ORIGIN`` (``""`` when unset), lower
    case; raises ``ImproperlyConfigured`` unless it is an ``http(s)://host[:port]`` origin."""
    if not origin:
        return ""
    parts = urlsplit(origin)
    if (parts.scheme not in ("http", "https") or not parts.hostname
            or parts.path not in ("", "/") or parts.query or parts.fragment
            or parts.username is not None):
        raise ImproperlyConfigured(
            f"PULP_DOWNLOADS_CONTENT_ORIGIN must be an origin such as "
            f"https://content.example.com, got {origin!r}")
    return _without_default_port(parts.netloc.lower())


def _without_default_port(host: str) -> str:
    for default in (":80", ":443"):
        if host.endswith(default):
            return host[:-len(default)]
    return host


class ContentSecurityMiddleware:
    """Sets :data:`HEADERS` on every answer under ``/content/`` (404s, 405s, 500s and
    listings included: place it first, so it sees the answers of the other middleware), and
    keeps the rest of the site off the content origin (see the module docstring)."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest):
        if self.is_async:
            return self._acall(request)
        refused = _refused(request)
        if refused is not None:
            return refused
        return _secure(request, self.get_response(request))

    async def _acall(self, request: HttpRequest):
        refused = _refused(request)
        if refused is not None:
            return refused
        return _secure(request, await self.get_response(request))


def _secure(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if request.path.startswith(PREFIX) or request.path == PREFIX[:-1]:
        for name, value in HEADERS.items():
            response[name] = value
    return response


def _refused(request: HttpRequest) -> HttpResponse | None:
    """404 for a page other than content on the content origin, else ``None``."""
    from django.conf import settings

    host = content_origin_host(
        (getattr(settings, "PULP_DOWNLOADS", None) or {}).get("CONTENT_ORIGIN") or "")
    if not host or request.path.startswith(_CONTENT_ORIGIN_PATHS):
        return None
    if _without_default_port(request.get_host().lower()) != host:
        return None
    return HttpResponseNotFound(
        "This origin serves /content/ only; the admin and the API are on the site's main "
        "address.\n", content_type="text/plain; charset=utf-8")
