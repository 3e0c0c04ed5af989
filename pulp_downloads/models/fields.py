"""EncryptedTextField: secrets encrypted at rest (Fernet), plain text in Python."""
from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


def _fernet() -> Fernet:
    """The key: ``PULP_DOWNLOADS_DB_KEY`` (a Fernet key) when set, else derived from
    ``SECRET_KEY`` (then changing SECRET_KEY makes stored secrets unreadable)."""
    key = os.environ.get("PULP_DOWNLOADS_DB_KEY") or getattr(settings, "PULP_DOWNLOADS_DB_KEY", "")
    if key:
        try:
            return Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                "PULP_DOWNLOADS_DB_KEY must be a Fernet key (32 url-safe base64 bytes)"
            ) from None
    digest = hashlib.sha256(b"pulp_downloads secrets:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class EncryptedTextField(models.TextField):
    """Stores ``fernet:<token>``; reads back the plain text. Empty stays empty. Values written
    before encryption (no prefix) are read as they are and encrypted on the next save."""

    def from_db_value(self, value, expression, connection):
        if not value or not value.startswith(PREFIX):
            return value
        try:
            return _fernet().decrypt(value[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise ImproperlyConfigured(
                f"cannot decrypt {self.model.__name__}.{self.name}: the database key changed "
                "(set PULP_DOWNLOADS_DB_KEY, or the SECRET_KEY the secrets were stored with)"
            ) from None

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if not value or value.startswith(PREFIX):
            return value
        return PREFIX + _fernet().encrypt(value.encode()).decode()
