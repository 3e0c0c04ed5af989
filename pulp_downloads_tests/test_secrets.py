"""Secrets are encrypted at rest and read back as plain text."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
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


def test_a_password_that_looks_encrypted_is_encrypted_too(api_client_for):
    api = api_client_for("remote administrator")
    response = api.post("/api/remotes/", {
        "name": "f", "url": "https://example.test/PULP_MANIFEST", "username": "u",
        "password": "fernet:not-a-token",
    }, format="json")
    assert response.status_code == 201, response.json()
    stored = raw_row(response.json()["id"])[0]
    assert stored.startswith("fernet:") and "not-a-token" not in stored
    assert Remote.objects.get(name="f").password == "fernet:not-a-token"
    for path in ("/api/remotes/", response.json()["href"]):
        assert api.get(path).status_code == 200


def test_an_undecryptable_secret_fails_only_where_it_is_used(monkeypatch, make_user):
    from django.test import Client

    from pulp_downloads.download import DownloaderFactory
    from pulp_downloads.models.fields import SecretUnreadable
    from pulp_downloads.tasks import run_sync_now

    remote = Remote.objects.create(name="lost-key", url="https://example.test/PULP_MANIFEST",
                                   username="u", password="pw")
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", Fernet.generate_key().decode())
    again = Remote.objects.get(pk=remote.pk)  # loads: the list and pages still work
    assert bool(again.password) and repr(again.password) == "<unreadable secret>"
    admin = Client()
    admin.force_login(make_user("root", is_superuser=True, is_staff=True))
    assert admin.get("/admin/pulp_downloads/remote/").status_code == 200
    assert admin.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/").status_code == 200
    api = api_client_for_superuser(make_user)
    listed = api.get("/api/remotes/")
    assert listed.status_code == 200 and listed.json()["results"][0]["has_password"] is True
    # Saving the row (another field changed) keeps the secret as it was stored.
    stored = raw_row(remote.pk)[0]
    again.policy = "streamed"
    again.save()
    assert raw_row(remote.pk)[0] == stored
    # Using it fails, naming the remote, without a traceback in the task.
    with pytest.raises(SecretUnreadable, match="password of remote 'lost-key'"):
        DownloaderFactory(again)
    task = run_sync_now(again)
    assert task.state == "failed" and "password of remote 'lost-key'" in task.error


def api_client_for_superuser(make_user):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(make_user("api-root", is_superuser=True))
    return api


def test_several_keys_and_rotation_keep_every_secret_readable(monkeypatch, client_cert):
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", old)
    key = client_cert.private_key_pem.bytes().decode()
    remote = Remote.objects.create(
        name="rot", url="https://example.test/PULP_MANIFEST", username="u", password="pw-1",
        proxy_url="http://127.0.0.1:3128", proxy_username="p", proxy_password="px-1",
        client_cert=client_cert.cert_chain_pems[0].bytes().decode(), client_key=key,
    )
    before = raw_row(remote.pk)
    # The new key first, the old one still listed: everything reads, new writes use the new key.
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", f"{new},{old}")
    assert Remote.objects.get(pk=remote.pk).password == "pw-1"
    call_command("rotate_secrets", stdout=open("/dev/null", "w"))
    after = raw_row(remote.pk)
    assert all(a != b for a, b in zip(after, before))
    # Only the new key left: still readable.
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", new)
    again = Remote.objects.get(pk=remote.pk)
    assert (again.password, again.proxy_password, again.client_key) == ("pw-1", "px-1", key)


def test_rotation_reports_secrets_no_key_can_read(monkeypatch):
    from django.core.management import CommandError, call_command

    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", Fernet.generate_key().decode())
    remote = Remote.objects.create(name="gone", url="https://example.test/PULP_MANIFEST",
                                   username="u", password="pw")
    stored = raw_row(remote.pk)[0]
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", Fernet.generate_key().decode())
    with pytest.raises(CommandError, match="1 secret\\(s\\) could not be decrypted"):
        call_command("rotate_secrets", stdout=open("/dev/null", "w"),
                     stderr=open("/dev/null", "w"))
    assert raw_row(remote.pk)[0] == stored


def test_check_reports_an_invalid_key(monkeypatch):
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", "not-a-key")
    with pytest.raises(SystemCheckError, match="pulp_downloads.E001"):
        call_command("check")


def test_the_api_strips_secrets_and_refuses_control_characters_naming_the_field(
        api_client_for):
    api = api_client_for("remote administrator")
    response = api.post("/api/remotes/", {
        "name": "pasted", "url": "https://example.test/PULP_MANIFEST", "username": "u",
        "password": " pw-PASTED\n", "bearer_token": "tok-PASTED\r\n",
        "proxy_url": "http://127.0.0.1:3128", "proxy_username": "p",
        "proxy_password": "\tpx-PASTED ",
    }, format="json")
    assert response.status_code == 201, response.json()
    remote = Remote.objects.get(name="pasted")
    assert (remote.password, remote.bearer_token, remote.proxy_password) == (
        "pw-PASTED", "tok-PASTED", "px-PASTED")
    for field in ("password", "bearer_token", "proxy_password"):
        refused = api.patch(response.json()["href"], {field: "in\x07side-PASTED"}, format="json")
        assert refused.status_code == 400
        assert list(refused.json()) == [field]
        assert "control characters" in refused.json()[field][0]
        assert "PASTED" not in refused.content.decode()
