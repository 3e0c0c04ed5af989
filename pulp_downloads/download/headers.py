"""Checks at the edges of a request: header names and values going out, redirects coming in.

What a request carries comes partly from the operator (a remote's ``headers`` and
credentials) and partly from servers (a token endpoint's token, a redirect's ``Location``).
Anything that cannot travel in HTTP is refused here as a :class:`DownloadError` subclass
naming what is wrong, never showing a header's value (it may be a secret).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import yarl

from .exceptions import InvalidHeader, InvalidResponse

#: A header name: an RFC 9110 token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Characters no header value may hold: controls other than horizontal tab, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a character that cannot be sent in a header value."""
    return _CONTROL.search(value) is not None


def check_headers(url: str, *headers: Mapping[str, str]) -> None:
    """Raise :class:`InvalidHeader` unless every name is a token and every value a string
    without control characters (CR, LF, NUL, ...)."""
    for mapping in headers:
        for name, value in mapping.items():
            if not isinstance(name, str) or not _TOKEN.fullmatch(name):
                shown = repr(name)[:60]
                raise InvalidHeader(url, f"a header name is not an HTTP token: {shown}")
            if not isinstance(value, str) or has_control_characters(value):
                raise InvalidHeader(
                    url, f"the {name} header cannot be sent: its value holds a control "
                         "character (CR, LF, NUL, ...); check the remote's headers and "
                         "credentials")


def redirect_target(response_url: yarl.URL, location: str) -> str:
    """The absolute URL a redirect's ``Location`` points at; :class:`InvalidResponse` when it
    is not a URL (``http://[::1``)."""
    try:
        return str(response_url.join(yarl.URL(location)))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise InvalidResponse(str(response_url), f"redirect to a malformed URL "
                                                 f"({type(exc).__name__})") from None

