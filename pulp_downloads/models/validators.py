"""Field checks shared by the Remote model (and so by the admin, the API and commands).

Each function raises ``django.core.exceptions.ValidationError`` with a message that never
repeats a secret value back.
"""
from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError

# Named here by migration 0001; the header rules live in .headers.
from .headers import validate_headers  # noqa: F401

#: The lowest ``rate_limit`` (requests per second): one request per 10 seconds.
MIN_RATE_LIMIT = 0.1


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
