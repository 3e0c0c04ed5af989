"""The API as DRF users browse it: absolute links that resolve, a log-in link, bare action
pages, filters by name, digest and path; ``/status/``; the landing page and content
listings."""
from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from pulp_downloads.models import Artifact, ContentUnit, Remote, SyncTask, Worker

from .upstream import sha256

pytestmark = pytest.mark.django_db(transaction=True)
BASE = "http://testserver/"


@pytest.fixture
def synced(threaded_upstream):
    """A remote ``r`` synced from 4 files in two directories, and an administrator's client."""
    content = {"pool/a/one.bin": os.urandom(3000), "pool/a/two.bin": os.urandom(2000),
               "pool/b/three.bin": os.urandom(1000), "top.bin": os.urandom(500)}
    url = threaded_upstream.add_repo("repo", content)
    api = APIClient()
    api.force_authenticate(User.objects.create_superuser("admin"))
    remote = api.post("/api/remotes/", {"name": "r", "url": url}, format="json").json()
    task = api.post(f"{remote['href']}sync/").json()["task"]
    assert api.get(task).json()["state"] == "completed"
    return api, remote, content


def _links(value):
    """Every string in a JSON document that is a URL of this site."""
    if isinstance(value, dict):
        for item in value.values():
            yield from _links(item)
    elif isinstance(value, list):
        for item in value:
            yield from _links(item)
    elif isinstance(value, str) and value.startswith("http://testserver"):
        yield value


def test_every_href_is_absolute_and_resolves(synced):
    api, remote, _ = synced
    assert remote["href"] == f"{BASE}api/remotes/{remote['id']}/"
    root = api.get("/api/").json()
    assert set(root) == {"remotes", "tasks", "artifacts", "content"}
    seen = set()
    for listing in root.values():
        assert listing.startswith(BASE)
        page = api.get(listing).json()
        assert page["count"] > 0
        for item in page["results"]:
            for field in ("href", "remote", "artifact", "latest_task"):
                if item.get(field) is not None:
                    assert item[field].startswith(BASE), (field, item[field])
            seen.update(_links(item))
    assert len(seen) >= 1 + 1 + 4 + 4  # remote, task, artifacts, content units
    for link in seen:
        assert api.get(link).status_code == 200, link


def test_browsable_api_has_a_log_in_link_and_bare_action_pages(synced):
    api, remote, _ = synced
    anonymous = APIClient().get("/api/", HTTP_ACCEPT="text/html")
    assert anonymous.status_code in (401, 403)
    assert "href='/api/auth/login/?next=/api/'>Log in" in anonymous.content.decode()
    login_page = APIClient().get("/api/auth/login/")
    assert login_page.status_code == 200 and b'name="username"' in login_page.content

    page = api.get(f"{remote['href']}sync/", HTTP_ACCEPT="text/html").content.decode()
    assert 'name="url"' not in page and 'name="name"' not in page  # no Remote form
    task = SyncTask.objects.get()
    page = api.get(f"/api/tasks/{task.pk}/cancel/", HTTP_ACCEPT="text/html").content.decode()
    assert "POST" in page and 'name="state"' not in page
    schema = api.get("/api/schema/", {"format": "json"}).json()
    sync_op = schema["paths"]["/api/remotes/{id}/sync/"]["post"]
    assert "requestBody" not in sync_op


def test_filters_by_remote_name_digest_and_path_prefix(synced):
    api, remote, content = synced
    Remote.objects.create(name="other", url="https://example.test/PULP_MANIFEST")
    assert api.get("/api/tasks/", {"remote_name": "r"}).json()["count"] == 1
    assert api.get("/api/tasks/", {"remote_name": "other"}).json()["count"] == 0

    artifact = Artifact.objects.get(sha256=sha256(content["top.bin"]))
    for algorithm in ("sha224", "sha256", "sha384", "sha512"):
        found = api.get("/api/artifacts/", {"digest": getattr(artifact, algorithm)}).json()
        assert [item["id"] for item in found["results"]] == [artifact.pk], algorithm
    assert api.get("/api/artifacts/", {"digest": "ab" * 20}).json()["count"] == 0
    assert api.get("/api/artifacts/", {"digest": "nothex"}).status_code == 400

    units = api.get("/api/content/", {"remote_name": "r",
                                      "relative_path__startswith": "pool/a/"}).json()
    assert sorted(u["relative_path"] for u in units["results"]) == ["pool/a/one.bin",
                                                                     "pool/a/two.bin"]
    assert api.get("/api/content/", {"remote_name": "other"}).json()["count"] == 0


def test_status_reports_versions_database_storage_workers_and_tasks(db, settings, tmp_path):
    status = APIClient().get("/status/")
    assert status.status_code == 200
    body = status.json()
    assert body["status"] == "ok"
    assert body["versions"]["pulp_downloads"] and body["versions"]["django"].startswith("5.")
    assert body["database"]["connected"] is True
    storage = body["storage"]
    assert storage["backend"] == "filesystem" and storage["writable"] is True
    assert 0 < storage["free"] <= storage["total"]
    assert body["workers"] == {"online": 0, "last_heartbeat": None}
    assert body["tasks"] == {"waiting": 0, "running": 0}

    Worker.beat("host-a:1")
    Worker.beat("host-b:2")
    remote = Remote.objects.create(name="q", url="https://example.test/PULP_MANIFEST")
    SyncTask.objects.create(remote=remote)
    body = APIClient().get("/status/").json()
    assert body["workers"]["online"] == 2 and body["workers"]["last_heartbeat"]
    assert body["tasks"] == {"waiting": 1, "running": 0}

    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    settings.MEDIA_ROOT = str(read_only)
    try:
        body = APIClient().get("/status/").json()
        if os.geteuid() != 0:  # root writes anywhere
            assert body["storage"]["writable"] is False and body["status"] == "degraded"
    finally:
        read_only.chmod(0o755)


def test_landing_page_links_the_admin_api_docs_status_and_content(db):
    page = APIClient().get("/")
    assert page.status_code == 200
    text = page.content.decode()
    for link in ("/admin/", "/api/", "/api/docs/", "/status/", "/content/"):
        assert f'href="{link}"' in text, link


def test_content_listings_show_remotes_directories_and_files(synced):
    client = APIClient()
    top = client.get("/content/").content.decode()
    assert 'href="r/"' in top
    remote_page = client.get("/content/r/").content.decode()
    assert 'href="pool/"' in remote_page and 'href="top.bin"' in remote_page
    assert "pool/a" not in remote_page  # only what is directly under it
    directory = client.get("/content/r/pool/a/").content.decode()
    assert 'href="one.bin"' in directory and 'href="two.bin"' in directory
    assert 'href="../"' in directory
    assert '<span class="size" title="3,000 bytes">3.00 kB</span>' in directory  # one.bin
    assert client.get("/content/r/pool/a/one.bin").status_code == 200  # the link resolves
    assert client.get("/content/r/nowhere/").status_code == 404
    assert client.get("/content/missing/").status_code == 404
    assert ContentUnit.objects.count() == 4
