"""Secrets are encrypted at rest and read back as plain text."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from pulp_downloads.models import Remote

pytestmark = pytest.mark.django_db


def raw_row(pk: int) -> tuple:
    with connection.cursor() as cursor:
        cursor.execute("SELECT password, proxy_password, client_key FROM pulp_downloads_remote "
                       "WHERE id = %s", [pk])
        return cursor.fetchone()


def test_secrets_are_encrypted_in_the_database(client_cert):
    key = client_cert.private_key_pem.bytes().decode()
    remote = Remote.objects.create(
        name="enc", url="https://example.test/PULP_MANIFEST", username="u", password="pw-PLAIN",
        proxy_url="http://127.0.0.1:3128", proxy_username="p", proxy_password="px-PLAIN",
        client_cert=client_cert.cert_chain_pems[0].bytes().decode(), client_key=key,
    )
    stored = raw_row(remote.pk)
    assert all(value.startswith("fernet:") for value in stored)
    assert "PLAIN" not in "".join(stored) and "PRIVATE KEY" not in "".join(stored)
    again = Remote.objects.get(pk=remote.pk)
    assert (again.password, again.proxy_password, again.client_key) == ("pw-PLAIN", "px-PLAIN", key)
    assert list(Remote.objects.values_list("password", flat=True)) == ["pw-PLAIN"]


def test_empty_secrets_stay_empty():
    remote = Remote.objects.create(name="none", url="https://example.test/PULP_MANIFEST")
    assert raw_row(remote.pk) == ("", "", "")


def test_plain_values_from_before_encryption_are_read_and_encrypted_on_save():
    remote = Remote.objects.create(name="old", url="https://example.test/PULP_MANIFEST",
                                   username="u", password="x")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pulp_downloads_remote SET password = %s WHERE id = %s",
                       ["legacy-pw", remote.pk])
    remote = Remote.objects.get(pk=remote.pk)
    assert remote.password == "legacy-pw"
    remote.save()
    assert raw_row(remote.pk)[0].startswith("fernet:")


def test_a_wrong_database_key_is_a_clear_error(settings, monkeypatch):
    remote = Remote.objects.create(name="k", url="https://example.test/PULP_MANIFEST",
                                   username="u", password="pw")
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", Fernet.generate_key().decode())
    with pytest.raises(ImproperlyConfigured, match="database key changed"):
        Remote.objects.get(pk=remote.pk)
