"""The Remote admin: secrets are write-only and validation errors land on their fields."""
from __future__ import annotations

import pytest

from pulp_downloads.models import Remote

pytestmark = pytest.mark.django_db


@pytest.fixture
def remote():
    return Remote.objects.create(
        name="secretive", url="https://example.test/PULP_MANIFEST",
        username="alice", password="pw-NEVER-SHOWN",
    )


def form_data(remote: Remote, **overrides) -> dict:
    data = {
        "name": remote.name, "url": remote.url, "policy": remote.policy,
        "headers": "", "mirrors": "", "tls_validation": "on",
        "username": remote.username, "password": "",
        "proxy_url": "", "proxy_username": "", "proxy_password": "",
        "ca_cert": "", "client_cert": "", "client_key": "", "mirrorlist_url": "",
    }
    data.update(overrides)
    return data


def test_change_page_never_renders_the_password(admin_client, remote):
    response = admin_client.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/")
    assert response.status_code == 200
    assert b"pw-NEVER-SHOWN" not in response.content
    assert b'type="password"' in response.content


def test_saving_with_empty_password_keeps_the_stored_one(admin_client, remote):
    response = admin_client.post(
        f"/admin/pulp_downloads/remote/{remote.pk}/change/", form_data(remote, url="https://example.test/v2/PULP_MANIFEST")
    )
    assert response.status_code == 302, response.content[:2000]
    remote.refresh_from_db()
    assert remote.password == "pw-NEVER-SHOWN"
    assert remote.url.endswith("/v2/PULP_MANIFEST")


def test_clear_password_removes_it_with_the_username(admin_client, remote):
    response = admin_client.post(
        f"/admin/pulp_downloads/remote/{remote.pk}/change/",
        form_data(remote, username="", clear_password="on"),
    )
    assert response.status_code == 302
    remote.refresh_from_db()
    assert remote.password == "" and remote.username == ""


def test_model_validation_errors_show_on_the_field(admin_client):
    response = admin_client.post(
        "/admin/pulp_downloads/remote/add/",
        form_data(Remote(name="new", url="ftp://nope.test/"), password="s3cret-typed"),
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert "url" in form.errors
    assert b"s3cret-typed" not in response.content
    assert not Remote.objects.filter(name="new").exists()


@pytest.mark.django_db(transaction=True)
def test_sync_action_enqueues_and_reports_tasks(admin_client, threaded_upstream):
    import os

    from pulp_downloads.models import Artifact, SyncTask

    url = threaded_upstream.add_repo("repo", {f"f{i}": os.urandom(1000) for i in range(3)})
    remote = Remote.objects.create(name="adm", url=url)
    response = admin_client.post("/admin/pulp_downloads/remote/", {
        "action": "sync_selected", "_selected_action": [remote.pk]}, follow=True)
    assert response.status_code == 200
    task = SyncTask.objects.get(remote=remote)
    assert task.state == "completed"
    assert "Sync of adm queued" in response.content.decode()
    page = admin_client.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/").content.decode()
    assert f"/admin/pulp_downloads/synctask/{task.pk}/change/" in page
    artifact = Artifact.objects.first()
    detail = admin_client.get(f"/admin/pulp_downloads/artifact/{artifact.pk}/change/")
    assert artifact.sha256 in detail.content.decode()
    download = admin_client.get(f"/admin/pulp_downloads/artifact/{artifact.pk}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == artifact.file.open("rb").read()
    assert admin_client.get(f"/admin/pulp_downloads/synctask/{task.pk}/change/").status_code == 200


def test_moving_to_a_new_origin_clears_the_password_and_says_so(admin_client, remote):
    response = admin_client.post(
        f"/admin/pulp_downloads/remote/{remote.pk}/change/",
        form_data(remote, url="https://elsewhere.test/PULP_MANIFEST"), follow=True,
    )
    assert response.status_code == 200
    assert b"cleared password, which would now reach a server" in response.content
    remote.refresh_from_db()
    assert remote.password == "" and remote.username == ""


def test_moving_with_the_password_typed_again_keeps_it(admin_client, remote):
    response = admin_client.post(
        f"/admin/pulp_downloads/remote/{remote.pk}/change/",
        form_data(remote, url="https://elsewhere.test/PULP_MANIFEST", password="pw-AGAIN"),
    )
    assert response.status_code == 302
    remote.refresh_from_db()
    assert remote.password == "pw-AGAIN" and remote.username == "alice"


def test_a_bearer_token_is_write_only(admin_client, remote):
    response = admin_client.post(f"/admin/pulp_downloads/remote/{remote.pk}/change/",
                                 form_data(remote, bearer_token="tok-NEVER-SHOWN"))
    assert response.status_code == 302
    page = admin_client.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/")
    assert b"tok-NEVER-SHOWN" not in page.content
    remote.refresh_from_db()
    assert remote.bearer_token == "tok-NEVER-SHOWN"


def test_the_add_form_shows_only_what_applies_to_a_new_remote(admin_client):
    page = admin_client.get("/admin/pulp_downloads/remote/add/").content.decode()
    assert 'name="password"' in page and 'name="bearer_token"' in page
    assert "Leave empty to keep" not in page
    assert 'name="clear_' not in page and "Clear password" not in page
    assert ">Record<" not in page and "Latest tasks" not in page and "Never synced" not in page
    assert "PEM private key. Never shown back." in page


def test_the_change_form_keeps_hints_clear_boxes_tasks_and_record(admin_client, remote):
    page = admin_client.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/").content.decode()
    assert "A value is set. Leave empty to keep the current password." in page
    for field in ("password", "proxy_password", "client_key", "bearer_token"):
        assert f'name="clear_{field}"' in page, field
    assert ">Record<" in page and "Latest tasks" in page and "Never synced." in page


def test_a_clear_box_posted_to_the_add_form_changes_nothing(admin_client):
    data = form_data(Remote(name="fresh", url="https://example.test/PULP_MANIFEST"),
                     username="bob", password="pw-new", clear_password="on")
    answer = admin_client.post("/admin/pulp_downloads/remote/add/", data)
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    assert Remote.objects.get(name="fresh").password == "pw-new"
