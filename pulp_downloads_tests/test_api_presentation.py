"""The API as people see it: the browsable API and its log-in page carry the project's
name, the root describes what is there, and a task says its ``outcome`` for people."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from pulp_downloads.models import Remote, SyncTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def api():
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("admin"))
    return client


def test_the_browsable_api_carries_the_projects_name(api):
    for url in ("/api/", "/api/remotes/", "/api/tasks/"):
        page = api.get(url, HTTP_ACCEPT="text/html").content.decode()
        assert '<a class="navbar-brand" rel="nofollow" href="/api/">pulp_downloads API</a>' in page
        assert "Django REST framework" not in page, url
        assert "– pulp_downloads API</title>" in page, url
    login = APIClient().get("/api/auth/login/").content.decode()
    assert "pulp_downloads API" in login and "Django REST framework" not in login


def test_the_root_describes_what_is_there(api):
    page = api.get("/api/", HTTP_ACCEPT="text/html").content.decode()
    assert "The default basic root view" not in page
    assert "<h1>API root</h1>" in page
    assert "<title>API root – pulp_downloads API</title>" in page  # the brand once
    for entry in ("remotes: where content comes from", "tasks: syncs and repairs",
                  "artifacts: stored files", "/api/repair/", "/api/docs/"):
        assert entry in page, entry
    assert set(api.get("/api/").json()) == {"remotes", "tasks", "artifacts", "content"}


def test_a_task_says_its_outcome(api):
    remote = Remote.objects.create(name="uxd-big", url="https://example.test/PULP_MANIFEST")
    partial = SyncTask.objects.create(remote=remote, state="completed", files_done=8,
                                      files_failed=2, files_total=10)
    other = Remote.objects.create(name="other", url="https://example.test/o/PULP_MANIFEST")
    running = SyncTask.objects.create(remote=other, state="running")
    body = api.get(f"/api/tasks/{partial.pk}/").json()
    assert body["state"] == "completed" and body["outcome"] == "Completed, 2 failed"
    assert api.get(f"/api/tasks/{running.pk}/").json()["outcome"] == "Running"
    schema = api.get("/api/schema/", {"format": "json"}).json()
    task = schema["components"]["schemas"]["SyncTask"]["properties"]
    assert task["outcome"]["readOnly"] is True
