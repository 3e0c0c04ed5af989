"""EncryptedTextField: secrets encrypted at rest (Fernet), plain text in Python.

Keys come from ``PULP_DOWNLOADS_DB_KEY``: one Fernet key, or several separated by commas (the
first encrypts, every one decrypts: ``cryptography``'s ``MultiFernet``), so keys can be
rotated with ``manage.py rotate_secrets``. Without it, one key is derived from ``SECRET_KEY``.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


class SecretUnreadable(ImproperlyConfigured):
    """A stored secret cannot be decrypted with the configured keys."""


class UnreadableSecret:
    """What a secret reads as when no configured key decrypts it, or when it decrypts to
    bytes that are not UTF-8 text.

    It is truthy (a value is set), shows as ``<unreadable secret>``, is written back unchanged
    when its row is saved, and raises :class:`SecretUnreadable` when its text is needed, so
    lists and pages keep working and only the use of that secret fails.
    """

    __slots__ = ("stored", "field", "owner", "not_text")

    def __init__(self, stored: str, field: str, *, not_text: bool = False) -> None:
        self.stored = stored
        self.field = field
        self.owner = ""  # the row's description, filled in by the model when it knows it
        self.not_text = not_text  # decrypted, but to bytes that are not UTF-8

    def __bool__(self) -> bool:
        return True

    def __repr__(self) -> str:
        return "<unreadable secret>"

    def __str__(self) -> str:
        owner = f" of {self.owner}" if self.owner else ""
        if self.not_text:
            raise SecretUnreadable(
                f"cannot use the {self.field}{owner}: it decrypts to bytes that are not UTF-8 "
                "text; enter the secret again")
        raise SecretUnreadable(
            f"cannot decrypt the {self.field}{owner}: none of the keys in PULP_DOWNLOADS_DB_KEY "
            "(or the SECRET_KEY it was derived from) matches; set the key it was stored with, "
            "or enter the secret again"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnreadableSecret) and other.stored == self.stored

    def __hash__(self) -> int:
        return hash(self.stored)


def configured_keys() -> str:
    """The raw key setting (environment first, then ``settings.PULP_DOWNLOADS_DB_KEY``)."""
    return os.environ.get("PULP_DOWNLOADS_DB_KEY") or getattr(settings, "PULP_DOWNLOADS_DB_KEY", "")


@functools.lru_cache(maxsize=8)
def _multifernet(keys: str, secret_key: str) -> MultiFernet:
    if not keys:
        digest = hashlib.sha256(b"pulp_downloads secrets:" + secret_key.encode()).digest()
        return MultiFernet([Fernet(base64.urlsafe_b64encode(digest))])
    fernets = []
    for number, key in enumerate((k.strip() for k in keys.split(",")), 1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"PULP_DOWNLOADS_DB_KEY: key {number} is not a Fernet key (32 url-safe base64 "
                "bytes); generate one with "
                "'python -c \"from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())\"'"
            ) from None
    return MultiFernet(fernets)


def secret_cipher() -> MultiFernet:
    """The configured keys; raises ``ImproperlyConfigured`` naming a bad one."""
    return _multifernet(configured_keys(), settings.SECRET_KEY)


def encrypt(value: str) -> str:
    """The stored form of ``value``: ``fernet:<token>`` under the first key."""
    return PREFIX + secret_cipher().encrypt(value.encode()).decode()


def decrypt(stored: str) -> str:
    """The plain text of a stored ``fernet:<token>``; raises ``InvalidToken``, or
    ``UnicodeDecodeError`` when the plaintext is not UTF-8."""
    return secret_cipher().decrypt(stored[len(PREFIX):].encode()).decode()


def read_secret(stored, field: str):
    """What a stored value reads as: ``stored`` itself when it is empty or was written before
    encryption (no prefix), its plain text, or an :class:`UnreadableSecret` (never raises)."""
    if not isinstance(stored, str) or not stored.startswith(PREFIX):
        return stored
    try:
        return decrypt(stored)
    except InvalidToken:
        return UnreadableSecret(stored, field)
    except UnicodeDecodeError:
        return UnreadableSecret(stored, field, not_text=True)


def write_secret(value):
    """The stored form of ``value``: ``fernet:<token>``; empty stays empty, and an
    :class:`UnreadableSecret` is kept as it was stored."""
    if isinstance(value, UnreadableSecret):
        return value.stored
    if not value:
        return value
    return encrypt(value)


def rotate(stored: str) -> str:
    """``stored`` re-encrypted under the first key; raises ``InvalidToken``."""
    return PREFIX + secret_cipher().rotate(stored[len(PREFIX):].encode()).decode()


class EncryptedTextField(models.TextField):
    """Stores ``fernet:<token>``; reads back the plain text. Empty stays empty.

    Every non-empty value is encrypted on save, whatever it looks like. Values written before
    encryption existed (no prefix) are read as they are and encrypted on the next save; a
    value no configured key decrypts reads as an :class:`UnreadableSecret`.
    """

    def from_db_value(self, value, expression, connection):
        return read_secret(value, self.verbose_name)

    def to_python(self, value):
        if isinstance(value, UnreadableSecret):
            return value
        return super().to_python(value)

    def get_prep_value(self, value):
        if isinstance(value, UnreadableSecret):
            return value.stored  # kept as it was: still readable with the right key
        return write_secret(super().get_prep_value(value))


class EncryptedHeadersField(models.JSONField):
    """A JSON object of header name -> value whose values are stored ``fernet:<token>``
    (the names stay readable) and read back as plain text; a value that cannot be read is
    an :class:`UnreadableSecret` named after its header. Values written before encryption
    (no prefix) are read as they are and encrypted on the next save."""

    def from_db_value(self, value, expression, connection):
        headers = super().from_db_value(value, expression, connection)
        if not isinstance(headers, dict):
            return headers
        return {name: read_secret(item, f"{name} header") for name, item in headers.items()}

    def get_prep_value(self, value):
        if isinstance(value, dict):
            value = {name: write_secret(item) if isinstance(item, (str, UnreadableSecret))
                     else item for name, item in value.items()}
        return super().get_prep_value(value)

    def validate(self, value, model_instance):
        if isinstance(value, dict):  # unreadable values are JSON as stored
            value = {name: item.stored if isinstance(item, UnreadableSecret) else item
                     for name, item in value.items()}
        super().validate(value, model_instance)
