"""Custom headers are secrets: values encrypted at rest and never shown back (API, admin,
command line), kept on update unless replaced or removed; names the downloader manages are
refused, naming the header."""
from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from pulp_downloads.models import Remote
from pulp_downloads.models.headers import MASK

pytestmark = pytest.mark.django_db

URL = "https://one.test/repo/PULP_MANIFEST"
REFUSED = ["Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE",
           "Upgrade", "Expect", "Range", "If-Range", "Accept-Encoding", "Via", "Authorization",
           "Proxy-Authorization", "Cookie"]


@pytest.fixture
def api(api_client_for):
    return api_client_for("remote administrator")


def raw_headers(pk: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT headers FROM pulp_downloads_remote WHERE id = %s", [pk])
        stored = cursor.fetchone()[0]
    return json.loads(stored) if isinstance(stored, str) else stored


def create(api, headers: dict, name: str = "h") -> dict:
    response = api.post("/api/remotes/", {"name": name, "url": URL, "headers": headers},
                        format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_header_values_are_encrypted_at_rest_and_read_back_plain(api):
    data = create(api, {"X-Api-Key": "key-SECRET", "X-Tenant": "blue"})
    stored = raw_headers(data["id"])
    assert set(stored) == {"X-Api-Key", "X-Tenant"}
    assert all(value.startswith("fernet:") for value in stored.values())
    assert "key-SECRET" not in json.dumps(stored) and "blue" not in json.dumps(stored)
    assert Remote.objects.get(pk=data["id"]).headers == {"X-Api-Key": "key-SECRET",
                                                         "X-Tenant": "blue"}


def test_the_api_shows_header_names_with_masked_values_to_every_role(api, api_client_for):
    data = create(api, {"X-Api-Key": "key-SECRET"})
    assert data["headers"] == {"X-Api-Key": MASK}
    viewer = api_client_for("remote viewer")
    for client in (api, viewer):
        for path in ("/api/remotes/", data["href"]):
            response = client.get(path)
            assert response.status_code == 200
            assert "key-SECRET" not in response.content.decode()
    assert viewer.get(data["href"]).json()["headers"] == {"X-Api-Key": MASK}


def test_a_header_is_kept_on_update_unless_replaced_or_removed(api):
    href = create(api, {"X-Api-Key": "key-SECRET", "X-Tenant": "blue"})["href"]
    api.patch(href, {"policy": "on_demand"}, format="json")
    assert Remote.objects.get().headers == {"X-Api-Key": "key-SECRET", "X-Tenant": "blue"}
    # Named headers change; the others are kept.
    response = api.patch(href, {"headers": {"x-tenant": "green", "X-Trace": "on"}},
                         format="json")
    assert response.status_code == 200, response.json()
    assert Remote.objects.get().headers == {"X-Api-Key": "key-SECRET", "x-tenant": "green",
                                            "X-Trace": "on"}
    # null removes one; the mask keeps the stored value.
    api.patch(href, {"headers": {"X-Trace": None, "X-Api-Key": MASK}}, format="json")
    assert Remote.objects.get().headers == {"X-Api-Key": "key-SECRET", "x-tenant": "green"}
    # A full PUT of what was read back changes nothing.
    read = api.get(href).json()
    body = {key: read[key] for key in ("name", "url", "policy", "headers", "mirrors")}
    assert api.put(href, body, format="json").status_code == 200
    assert Remote.objects.get().headers == {"X-Api-Key": "key-SECRET", "x-tenant": "green"}


def test_the_mask_for_a_header_that_has_no_value_is_refused(api):
    response = api.post("/api/remotes/", {"name": "m", "url": URL,
                                          "headers": {"X-Api-Key": MASK}}, format="json")
    assert response.status_code == 400
    assert "X-Api-Key" in " ".join(response.json()["headers"])


@pytest.mark.parametrize("name", REFUSED + [name.lower() for name in REFUSED[:3]])
def test_names_the_downloader_manages_or_credentials_are_refused_naming_them(api, name):
    response = api.post("/api/remotes/", {"name": "r", "url": URL, "headers": {name: "x"}},
                        format="json")
    assert response.status_code == 400
    message = " ".join(response.json()["headers"])
    assert repr(name) in message, message
    assert not Remote.objects.exists()


@pytest.mark.parametrize("value", ["a\r\nInjected: 1", "a\nb", "a\x00", "a\x1b[31m", "a\x7f"])
def test_header_values_with_control_characters_are_refused(api, value):
    response = api.post("/api/remotes/", {"name": "r", "url": URL,
                                          "headers": {"X-Api-Key": value}}, format="json")
    assert response.status_code == 400
    message = " ".join(response.json()["headers"])
    assert "X-Api-Key" in message and "control characters" in message
    assert value not in message


def test_a_name_given_twice_in_another_case_is_refused(api):
    response = api.post("/api/remotes/", {"name": "r", "url": URL,
                                          "headers": {"X-A": "1", "x-a": "2"}}, format="json")
    assert response.status_code == 400 and "given twice" in " ".join(response.json()["headers"])


def test_header_values_are_stripped(api):
    create(api, {"X-Tenant": "  blue \t"})
    assert Remote.objects.get().headers == {"X-Tenant": "blue"}


# --- admin ---------------------------------------------------------------------------------------
def admin_form(remote: Remote, **overrides) -> dict:
    data = {"name": remote.name, "url": remote.url, "policy": remote.policy, "headers": "",
            "mirrors": "", "tls_validation": "on", "username": "", "password": "",
            "bearer_token": "", "proxy_url": "", "proxy_username": "", "proxy_password": "",
            "ca_cert": "", "client_cert": "", "client_key": "", "mirrorlist_url": ""}
    data.update(overrides)
    return data


def test_the_admin_masks_values_and_keeps_replaces_or_removes_by_line(admin_client):
    remote = Remote.objects.create(name="adm", url=URL,
                                   headers={"X-Api-Key": "key-SECRET", "X-Tenant": "blue"})
    page = admin_client.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/")
    text = page.content.decode()
    assert "key-SECRET" not in text and "blue" not in text
    assert f"X-Api-Key: {MASK}\nX-Tenant: {MASK}" in text
    change = f"/admin/pulp_downloads/remote/{remote.pk}/change/"
    # Saved as shown: kept.
    response = admin_client.post(change, admin_form(
        remote, headers=f"X-Api-Key: {MASK}\nX-Tenant: {MASK}"))
    assert response.status_code == 302
    remote.refresh_from_db()
    assert remote.headers == {"X-Api-Key": "key-SECRET", "X-Tenant": "blue"}
    # A new value replaces; a deleted line removes.
    admin_client.post(change, admin_form(remote, headers="X-Api-Key: key-2"))
    remote.refresh_from_db()
    assert remote.headers == {"X-Api-Key": "key-2"}


def test_the_admin_refuses_a_managed_header_naming_it(admin_client):
    remote = Remote.objects.create(name="adm", url=URL)
    response = admin_client.post(f"/admin/pulp_downloads/remote/{remote.pk}/change/",
                                 admin_form(remote, headers="Via: 1.1 elsewhere"))
    assert response.status_code == 200
    assert "Header &#x27;Via&#x27; is managed by the downloader" in response.content.decode()


# --- command line --------------------------------------------------------------------------------
def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_command_line_masks_values_and_changes_one_header_at_a_time(monkeypatch):
    monkeypatch.setenv("API_KEY", "key-SECRET")
    run("remote", "create", "cli", URL, "--header-env", "X-Api-Key=API_KEY",
        "--header", "X-Tenant: blue")
    assert Remote.objects.get().headers == {"X-Api-Key": "key-SECRET", "X-Tenant": "blue"}
    shown = run("remote", "show", "cli")
    assert "key-SECRET" not in shown and "blue" not in shown
    assert f"X-Api-Key: {MASK}; X-Tenant: {MASK}" in shown
    assert json.loads(run("remote", "show", "cli", "--json"))["headers"] == {
        "X-Api-Key": MASK, "X-Tenant": MASK}
    run("remote", "update", "cli", "--header", "X-Trace: on", "--remove-header", "x-tenant")
    assert Remote.objects.get().headers == {"X-Api-Key": "key-SECRET", "X-Trace": "on"}
    run("remote", "update", "cli", "--no-headers", "--header", "X-Only: 1")
    assert Remote.objects.get().headers == {"X-Only": "1"}
    with pytest.raises(CommandError, match="Header 'Range' is managed by the downloader"):
        run("remote", "update", "cli", "--header", "Range: bytes=0-")
    with pytest.raises(CommandError, match="--header-env 'X-A': expected 'NAME=VAR'"):
        run("remote", "update", "cli", "--header-env", "X-A")
    with pytest.raises(CommandError, match="environment variable NOPE is not set"):
        run("remote", "update", "cli", "--header-env", "X-A=NOPE")


# --- the stored form -----------------------------------------------------------------------------
def test_values_stored_before_encryption_are_read_and_the_migration_encrypts_them():
    import importlib

    from django.apps import apps

    remote = Remote.objects.create(name="old", url=URL)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE pulp_downloads_remote SET headers = %s WHERE id = %s",
                       [json.dumps({"X-Api-Key": "legacy-key"}), remote.pk])
    assert Remote.objects.get(pk=remote.pk).headers == {"X-Api-Key": "legacy-key"}
    migration = importlib.import_module("pulp_downloads.migrations.0019_encrypt_headers")
    migration.encrypt_existing(apps, None)
    stored = raw_headers(remote.pk)
    assert stored["X-Api-Key"].startswith("fernet:") and "legacy" not in stored["X-Api-Key"]
    assert Remote.objects.get(pk=remote.pk).headers == {"X-Api-Key": "legacy-key"}


def test_rotation_re_encrypts_header_values(monkeypatch):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", old)
    remote = Remote.objects.create(name="rot", url=URL, headers={"X-Api-Key": "key-1"})
    before = raw_headers(remote.pk)["X-Api-Key"]
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", f"{new},{old}")
    out = run("rotate_secrets")
    assert "Re-encrypted 1 secret(s)" in out
    assert raw_headers(remote.pk)["X-Api-Key"] != before
    monkeypatch.setenv("PULP_DOWNLOADS_DB_KEY", new)
    assert Remote.objects.get(pk=remote.pk).headers == {"X-Api-Key": "key-1"}


def test_a_browsable_api_form_leaves_the_headers_as_they_are(api):
    href = create(api, {"X-Api-Key": "key-SECRET"})["href"]
    response = api.patch(href, {"policy": "on_demand", "headers": ""}, format="multipart")
    assert response.status_code == 200, response.json()
    assert Remote.objects.get().headers == {"X-Api-Key": "key-SECRET"}
    form = api.get(href, HTTP_ACCEPT="text/html").content.decode()
    assert "key-SECRET" not in form
