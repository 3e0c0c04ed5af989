"""A Remote's extra request headers: which names are allowed, how values are shown, and how a
change is applied.

Header values are secrets (API keys travel in them): stored encrypted
(:class:`~.fields.EncryptedHeadersField`), shown back only as :data:`MASK`, and sent to the
remote's own origins only. Every entry point (API, admin, command line) applies a change
with :func:`merge_headers`, so one rule holds everywhere: a stored header is kept unless the
change replaces it (a new value) or removes it (``None``); the mask given back as a value
keeps the stored value.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from django.core.exceptions import ValidationError

from .fields import UnreadableSecret

#: What a stored header value is shown as; given back as a value, it keeps the stored one.
MASK = "********"
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Characters no header value (nor a secret sent in one) may hold: controls other than
#: horizontal tab, and DEL (the set the download library refuses at send time).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a character that cannot be sent in a header value."""
    return _CONTROL.search(value) is not None

#: Headers the downloader manages, or that change how bytes are transferred: set by hand they
#: would break downloads (``Range``), defeat loop detection (``Via``) or the "stored as
#: served" rule (``Accept-Encoding``).
MANAGED_HEADERS = frozenset({
    "accept-encoding", "connection", "content-length", "expect", "host", "if-range",
    "keep-alive", "proxy-connection", "range", "te", "trailer", "transfer-encoding", "upgrade",
    "via",
})

#: Headers that carry credentials: they belong in the remote's secret fields.
CREDENTIAL_HEADERS = {
    "authorization": "the username/password or bearer_token fields",
    "proxy-authorization": "the proxy_username/proxy_password fields",
    "cookie": "a bearer_token or username/password (cookies are not supported)",
}


def split_header_line(line: str) -> tuple[str, str] | None:
    """``(name, value)`` of one ``Name: value`` line (the text form of ``headers`` in the
    admin and on the command line), or ``None`` when it has no name or no colon."""
    name, colon, value = line.partition(":")
    name = name.strip()
    if not colon or not name:
        return None
    return name, value.strip()


def check_header_name(name: object) -> None:
    """Raise ``ValidationError`` naming the header when ``name`` may not be set."""
    if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
        raise ValidationError(f"Invalid header name {name!r}.", code="header_name")
    lowered = name.lower()
    if lowered in CREDENTIAL_HEADERS:
        raise ValidationError(
            f"Header {name!r} carries credentials and cannot be a custom header; use "
            f"{CREDENTIAL_HEADERS[lowered]}.", code="credentials")
    if lowered in MANAGED_HEADERS:
        raise ValidationError(
            f"Header {name!r} is managed by the downloader and cannot be set.",
            code="forbidden")


def validate_headers(value) -> None:
    """Extra request headers: a JSON object of header name -> single-line string value.

    A value no configured key decrypts (:class:`UnreadableSecret`) is accepted as it is: it
    was valid when stored."""
    # No code here may be "invalid": the JSON field would put its own message in its place.
    if not isinstance(value, dict):
        raise ValidationError("Headers must be an object of name: value pairs.",
                              code="headers_object")
    seen: set[str] = set()
    for name, header_value in value.items():
        check_header_name(name)
        if name.lower() in seen:
            raise ValidationError(f"Header {name!r} is given twice.", code="duplicate")
        seen.add(name.lower())
        if isinstance(header_value, UnreadableSecret):
            continue
        if not isinstance(header_value, str) or has_control_characters(header_value):
            raise ValidationError(
                f"Header {name!r} must have a single-line string value without control "
                "characters.", code="header_value")


def masked(headers: Mapping | None) -> dict[str, str]:
    """The names of ``headers`` (sorted, case-insensitively) with every value masked."""
    if not isinstance(headers, Mapping):
        return {}
    return {name: MASK for name in sorted(headers, key=lambda n: str(n).lower())}


def merge_headers(stored: Mapping | None, changes: Mapping[str, str | None]
                  ) -> tuple[dict, frozenset[str]]:
    """Apply ``changes`` to the ``stored`` headers; names match case-insensitively.

    A string value sets or replaces that header (a value is stripped of surrounding
    whitespace); ``None`` removes it; :data:`MASK` keeps the stored value (and is refused
    for a header that has none). Headers not named are kept. Returns the new headers and the
    lower-cased names whose values this change supplies (those survive a move of the
    remote). Raises ``ValidationError`` naming the header on a bad name or value.
    """
    merged = dict(stored) if isinstance(stored, Mapping) else {}
    supplied: set[str] = set()
    given: set[str] = set()
    for name, value in changes.items():
        check_header_name(name)
        lowered = name.lower()
        if lowered in given:
            raise ValidationError(f"Header {name!r} is given twice.", code="duplicate")
        given.add(lowered)
        existing = next((known for known in merged if known.lower() == lowered), None)
        if value is None:
            merged.pop(existing, None)
            continue
        if not isinstance(value, str):
            raise ValidationError(f"Header {name!r} must have a string value (or null to "
                                  "remove it).", code="header_value")
        if value == MASK:
            if existing is None:
                raise ValidationError(
                    f"Header {name!r}: {MASK!r} stands for a stored value and there is none; "
                    "give the value.", code="mask")
            merged[name] = merged.pop(existing)  # kept (a new spelling of the name wins)
            continue
        merged.pop(existing, None)
        merged[name] = value.strip()
        supplied.add(lowered)
    return merged, frozenset(supplied)
