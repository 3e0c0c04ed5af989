"""The rules for the URLs of a Remote, shared by the Remote model (and so by the admin, the
API and the commands) with the download library, so that what an operator may enter and
what the library will fetch never disagree."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from .download.fileurls import FileUrlError, confine_to_roots, file_url_to_path
from .download.origins import origin_of

REMOTE_SCHEMES = ("http", "https", "file")
PROXY_SCHEMES = ("http", "https")


def validate_url(value: str, *, schemes: Iterable[str], roots: Iterable[Path] = ()) -> None:
    """Check a URL's scheme, host, absence of embedded credentials and file:// confinement."""
    schemes = tuple(schemes)
    if not value or value != value.strip():
        raise ValidationError("Enter a URL without surrounding whitespace.", code="invalid")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ValidationError(f"Enter a valid URL ({exc}).", code="invalid") from None
    if parts.scheme not in schemes:
        raise ValidationError(
            f"Unsupported URL scheme {parts.scheme or '(none)'!r}; use one of: {', '.join(schemes)}.",
            code="scheme",
        )
    if "@" in parts.netloc:
        raise ValidationError(
            "Credentials must not be embedded in the URL; use the username/password fields.",
            code="credentials_in_url",
        )
    if parts.scheme == "file":
        try:
            confine_to_roots(file_url_to_path(value), roots)
        except FileUrlError as exc:
            raise ValidationError(str(exc), code="file_root") from None
    elif not parts.hostname:
        raise ValidationError("Enter a URL with a host name.", code="invalid")


def mixed_schemes(url: str, mirrors: list, mirrorlist_url: str) -> list[tuple[str, str]]:
    """``(field, message)`` for each mirror that can never serve ``url``: one downloader
    serves a URL and all its mirrors, so a ``file://`` remote takes ``file://`` mirrors only
    and an http(s) remote http(s) mirrors only (http and https mix freely). A mirror list
    names http(s) mirrors, so a ``file://`` remote cannot use one."""
    local = url.startswith("file:")
    problems = [
        ("mirrors", f"Mirror {index + 1} is {'an http(s)' if local else 'a file://'} URL, "
                    f"but url is {'a file://' if local else 'an http(s)'} URL: a remote's "
                    "mirrors must be of the same kind as its url (file://, or http(s)).")
        for index, mirror in enumerate(mirrors)
        if isinstance(mirror, str) and mirror.startswith("file:") != local
    ]
    if local and mirrorlist_url:
        problems.append(("mirrorlist_url", "A mirror list names http(s) mirrors, which cannot "
                                           "serve a file:// url."))
    return problems


def origins_of(urls: Iterable[str]) -> frozenset[str]:
    """The origins (scheme, host, port) the URLs point at."""
    return frozenset(origin_of(url) for url in urls)
