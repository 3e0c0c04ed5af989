"""Which upstream headers a client of ``/content/`` gets for a file not stored yet, and how
they are made safe to send: the one place both serving paths (the ASGI fast path and the
Django view) take them from.

HTTP header values are bytes; a client can only rely on ASCII. The downloader hands over the
upstream's values decoded as UTF-8 (bytes that are not UTF-8 kept as surrogates). A value
that is not printable ASCII is never sent as is (an ASGI server refuses, or a client misreads
it): the parameters of ``Content-Disposition`` (``filename=☃.bin``) are re-encoded as RFC 8187
extended values (``filename*=UTF-8''%E2%98%83.bin``), and any other such header is dropped.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import quote

from .stored import content_type

log = logging.getLogger(__name__)

#: Upstream headers passed on to clients (hop-by-hop and transfer headers never are).
FORWARDED_HEADERS = ("Content-Type", "Last-Modified", "ETag", "Cache-Control", "Expires",
                     "Content-Disposition", "Content-Language")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
#: ``attr-char`` of RFC 8187 besides letters, digits and ``_.-~`` (which quote() keeps).
_ATTR_CHARS = "!#$&+^`|"
#: One parameter of a header value: ``; name=token`` or ``; name="quoted string"``.
_PARAMETER = re.compile(r'\s*;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def forwarded(upstream_headers: Mapping[str, str] | None, relative_path: str,
              size: int) -> dict[str, str]:
    """The headers of a relayed file: those of :data:`FORWARDED_HEADERS` the upstream sent
    (made ASCII, see the module docstring), ``Content-Type`` guessed from the path when the
    upstream gave none, and ``Content-Length`` from the manifest."""
    headers = {}
    for name in FORWARDED_HEADERS:
        value = upstream_headers.get(name) if upstream_headers is not None else None
        if value is None:
            continue
        value = sendable(name, value)
        if value is not None:
            headers[name] = value
    headers.setdefault("Content-Type", content_type(relative_path))
    headers["Content-Length"] = str(size)
    return headers


def sendable(name: str, value: str) -> str | None:
    """``value`` as printable ASCII, ``Content-Disposition`` parameters re-encoded per
    RFC 8187; ``None`` when it cannot be sent (logged at debug level)."""
    if _PRINTABLE.fullmatch(value):
        return value
    if name.lower() == "content-disposition":
        encoded = _encoded_disposition(value)
        if encoded is not None:
            return encoded
    log.debug("upstream header %s dropped: its value is not printable ASCII", name)
    return None


def _encoded_disposition(value: str) -> str | None:
    """``attachment; filename=☃.bin`` -> ``attachment; filename*=UTF-8''%E2%98%83.bin``
    (``None`` when the value cannot be parsed). A parameter the upstream also gave in
    extended form (``filename*=``) keeps that form only; ASCII parameters stay as they are."""
    kind, _, rest = value.strip().rstrip(";").partition(";")
    kind = kind.strip()
    if not _PRINTABLE.fullmatch(kind) or not kind:
        return None
    parameters: dict[str, str] = {}  # by name, ``name*`` for extended values
    rest = ";" + rest if rest else ""
    position = 0
    while position < len(rest):
        match = _PARAMETER.match(rest, position)
        if match is None or not _PRINTABLE.fullmatch(match.group(1)):
            return None
        name, raw = match.group(1).lower(), match.group(2).strip()
        position = match.end()
        if raw.startswith('"') and raw.endswith('"') and len(raw) > 1:
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if name.endswith("*"):  # the upstream's own extended value wins
            if not _PRINTABLE.fullmatch(raw):
                return None
            parameters[name] = f"{name}={raw}"
        elif _PRINTABLE.fullmatch(raw):
            parameters.setdefault(name, f'{name}="{_quoted(raw)}"')
        else:
            parameters.setdefault(name + "*", f"{name}*={_extended(raw)}")
    return "; ".join([kind, *parameters.values()])


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _extended(text: str) -> str:
    """An RFC 8187 ``ext-value``: UTF-8 when the upstream's bytes were UTF-8, else their bytes
    as ISO-8859-1 (the only other charset the RFC names)."""
    data = text.encode("utf-8", "surrogateescape")
    try:
        data.decode("utf-8")
        charset = "UTF-8"
    except UnicodeDecodeError:
        charset = "ISO-8859-1"
    return f"{charset}''{quote(data, safe=_ATTR_CHARS)}"
