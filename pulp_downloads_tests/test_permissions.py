"""Who may do what: model permissions in the API and the admin, and the three role groups."""
from __future__ import annotations

import pytest
from django.test import Client

from pulp_downloads.models import Artifact, ContentUnit, Remote, SyncTask

pytestmark = pytest.mark.django_db(transaction=True)

VIEWER, OPERATOR, ADMINISTRATOR = "remote viewer", "remote operator", "remote administrator"


@pytest.fixture
def queue_only(settings):
    """Syncs are queued on the database backend and not run (no worker): the remotes here
    point at names that must never be contacted."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


@pytest.fixture
def objects(db):
    """One of each object, so that every detail endpoint has something to show."""
    remote = Remote.objects.create(name="r", url="https://example.test/repo/PULP_MANIFEST")
    task = SyncTask.objects.create(remote=remote, state=SyncTask.State.COMPLETED)
    unit = ContentUnit.objects.create(remote=remote, relative_path="a.bin", sha256="0" * 64,
                                      size=1)
    artifact = Artifact.objects.create(file="artifact/00/00", size=1, sha256="0" * 64)
    return {"remote": remote, "task": task, "unit": unit, "artifact": artifact}


def read_paths(objects) -> list[str]:
    return [
        "/api/remotes/", f"/api/remotes/{objects['remote'].pk}/",
        "/api/tasks/", f"/api/tasks/{objects['task'].pk}/",
        "/api/content/", f"/api/content/{objects['unit'].pk}/",
        "/api/artifacts/", f"/api/artifacts/{objects['artifact'].pk}/",
    ]


def test_a_user_without_permissions_gets_403_everywhere(api_client_for, objects, queue_only):
    api = api_client_for()
    remote = objects["remote"]
    for path in read_paths(objects):
        assert api.get(path).status_code == 403, path
    assert api.post("/api/remotes/", {"name": "x", "url": "https://example.test/x"},
                    format="json").status_code == 403
    assert api.patch(f"/api/remotes/{remote.pk}/", {"url": "https://evil.test/"},
                     format="json").status_code == 403
    assert api.delete(f"/api/remotes/{remote.pk}/").status_code == 403
    assert api.post(f"/api/remotes/{remote.pk}/sync/").status_code == 403
    remote.refresh_from_db()
    assert remote.url == "https://example.test/repo/PULP_MANIFEST"
    assert Remote.objects.count() == 1 and SyncTask.objects.count() == 1


def test_a_viewer_reads_but_cannot_write_or_sync(api_client_for, objects, queue_only):
    api = api_client_for(VIEWER)
    for path in read_paths(objects):
        assert api.get(path).status_code == 200, path
    remote = objects["remote"]
    assert api.get("/api/remotes/").json()["results"][0]["name"] == "r"
    assert api.post("/api/remotes/", {"name": "x", "url": "https://example.test/x"},
                    format="json").status_code == 403
    assert api.patch(f"/api/remotes/{remote.pk}/", {"policy": "streamed"},
                     format="json").status_code == 403
    assert api.delete(f"/api/remotes/{remote.pk}/").status_code == 403
    assert api.post(f"/api/remotes/{remote.pk}/sync/").status_code == 403
    assert SyncTask.objects.count() == 1


def test_an_operator_syncs_but_cannot_edit(api_client_for, objects, queue_only):
    api = api_client_for(OPERATOR)
    remote = objects["remote"]
    assert api.get(f"/api/remotes/{remote.pk}/").status_code == 200
    assert api.patch(f"/api/remotes/{remote.pk}/", {"url": "https://evil.test/"},
                     format="json").status_code == 403
    assert api.delete(f"/api/remotes/{remote.pk}/").status_code == 403
    assert api.post("/api/remotes/", {"name": "x", "url": "https://example.test/x"},
                    format="json").status_code == 403
    response = api.post(f"/api/remotes/{remote.pk}/sync/")
    assert response.status_code == 202, response.content
    assert SyncTask.objects.count() == 2


def test_an_administrator_creates_edits_and_deletes(api_client_for):
    api = api_client_for(ADMINISTRATOR)
    created = api.post("/api/remotes/", {"name": "x", "url": "https://example.test/x"},
                       format="json")
    assert created.status_code == 201
    href = created.json()["href"]
    assert api.patch(href, {"policy": "streamed"}, format="json").status_code == 200
    assert api.delete(href).status_code == 204


def test_superusers_keep_full_access(make_user, objects):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(make_user("root", is_superuser=True))
    for path in read_paths(objects):
        assert api.get(path).status_code == 200, path
    assert api.delete(f"/api/remotes/{objects['remote'].pk}/").status_code == 204


# --- the admin -------------------------------------------------------------------------------
def admin_client(make_user, *groups) -> Client:
    client = Client()
    client.force_login(make_user("staff", *groups, is_staff=True))
    return client


def test_admin_follows_the_model_permissions(make_user, objects):
    remote = objects["remote"]
    client = admin_client(make_user)
    assert client.get("/admin/pulp_downloads/remote/").status_code == 403
    assert client.get(f"/admin/pulp_downloads/remote/{remote.pk}/change/").status_code == 403


def test_admin_viewer_sees_remotes_read_only_and_no_sync_action(make_user, objects, queue_only):
    client = admin_client(make_user, VIEWER)
    page = client.get("/admin/pulp_downloads/remote/")
    assert page.status_code == 200
    assert b"sync_selected" not in page.content
    change = client.get(f"/admin/pulp_downloads/remote/{objects['remote'].pk}/change/")
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    # Posting the action by hand is refused too: no task is queued.
    client.post("/admin/pulp_downloads/remote/",
                {"action": "sync_selected", "_selected_action": [objects["remote"].pk]})
    assert SyncTask.objects.count() == 1


def test_admin_operator_can_run_the_sync_action(make_user, objects, queue_only):
    client = admin_client(make_user, OPERATOR)
    page = client.get("/admin/pulp_downloads/remote/")
    assert b"sync_selected" in page.content
    response = client.post("/admin/pulp_downloads/remote/",
                           {"action": "sync_selected", "_selected_action": [objects["remote"].pk]})
    assert response.status_code == 302
    assert SyncTask.objects.count() == 2


def test_the_role_groups_hold_the_documented_permissions(db):
    from django.contrib.auth.models import Group

    def codenames(name):
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    assert codenames(VIEWER) == {"view_remote", "view_synctask", "view_artifact",
                                 "view_contentunit"}
    assert codenames(OPERATOR) == codenames(VIEWER) | {"sync_remote", "cancel_synctask",
                                                       "view_metrics"}
    assert {"add_remote", "change_remote", "delete_remote", "sync_remote", "cancel_synctask",
            "repair_artifacts", "view_metrics"} <= codenames(ADMINISTRATOR)
