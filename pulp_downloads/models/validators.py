"""Field checks shared by the Remote model (and so by the admin, the API and commands).

Each function raises ``django.core.exceptions.ValidationError`` with a message that never
repeats a secret value back.
"""
from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError


#: The lowest ``rate_limit`` (requests per second): one request per 10 seconds.
MIN_RATE_LIMIT = 0.1
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: Headers the downloader manages itself; setting them by hand would break the transfer.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "host",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def parse_certificates(pem: str) -> list[x509.Certificate]:
    """Parse one or more PEM certificates, raising ValidationError when none parse."""
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("utf-8"))
    except (ValueError, UnicodeEncodeError):
        raise ValidationError(
            "Not a valid PEM certificate (expected '-----BEGIN CERTIFICATE-----' blocks).",
            code="pem",
        ) from None
    if not certs:
        raise ValidationError("No PEM certificate found.", code="pem")
    return certs


def parse_private_key(pem: str):
    """Parse an unencrypted PEM private key. The message never contains the key."""
    try:
        return serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except TypeError:
        raise ValidationError(
            "The private key is encrypted; provide an unencrypted PEM key.", code="pem"
        ) from None
    except (ValueError, UnicodeEncodeError, Exception):  # cryptography raises several types
        raise ValidationError("Not a valid PEM private key.", code="pem") from None


def key_matches_certificate(key, certificate: x509.Certificate) -> bool:
    """Whether ``key`` is the private half of ``certificate``'s public key."""
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return key.public_key().public_bytes(enc, fmt) == certificate.public_key().public_bytes(
        enc, fmt
    )


def has_control_characters(value: str) -> bool:
    """Whether ``value`` holds a control character other than tab (CR, LF, NUL, DEL, ...)."""
    return any((ord(c) < 32 and c != "\t") or c == "\x7f" for c in value)


def validate_remote_name(value: str) -> None:
    """A remote's name is a path segment of its content URLs (``/content/NAME/...``)."""
    if "/" in value or value in (".", "..") or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValidationError(
            "A remote name may not contain '/' or control characters, nor be '.' or '..': "
            "it is part of the content URLs (/content/NAME/...).", code="invalid")
    if value != value.strip():
        raise ValidationError("A remote name may not start or end with spaces.",
                              code="invalid")


def validate_timeout(value) -> None:
    """A timeout is a number of seconds greater than 0 (empty means the default)."""
    if value is not None and not value > 0:
        raise ValidationError("Enter a number of seconds greater than 0, or leave it empty "
                              "for the default.", code="min_value")


#: Headers that carry credentials: they belong in the remote's secret fields, which are
#: encrypted at rest, never shown back, and sent to trusted origins only.
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


def validate_headers(value) -> None:
    """Extra request headers: a JSON object of header name -> string value."""
    if not isinstance(value, dict):
        raise ValidationError("Headers must be an object of name: value pairs.", code="invalid")
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ValidationError(f"Invalid header name {name!r}.", code="invalid")
        if name.lower() in CREDENTIAL_HEADERS:
            raise ValidationError(
                f"Header {name!r} carries credentials and cannot be a custom header; use "
                f"{CREDENTIAL_HEADERS[name.lower()]}.",
                code="credentials",
            )
        if name.lower() in FORBIDDEN_HEADERS:
            raise ValidationError(
                f"Header {name!r} is managed by the downloader and cannot be set.",
                code="forbidden",
            )
        if not isinstance(header_value, str) or any(c in header_value for c in "\r\n\x00"):
            raise ValidationError(
                f"Header {name!r} must have a single-line string value.", code="invalid"
            )
