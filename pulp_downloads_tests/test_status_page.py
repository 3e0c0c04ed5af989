"""``/status/`` negotiates: a page in the admin's look for browsers, the same JSON as ever for
probes and API clients, ``Vary: Accept`` on both."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from pulp_downloads.models import Remote, SyncTask, Worker

pytestmark = pytest.mark.django_db
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
JSON_KEYS = {"status", "versions", "database", "storage", "workers", "tasks"}


@pytest.mark.parametrize("accept", [None, "*/*", "application/json",
                                    "application/json, text/plain, */*", "image/png"])
def test_api_clients_and_probes_get_the_json(accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    answer = Client().get("/status/", **headers)
    assert answer.status_code == 200 and answer["Content-Type"] == "application/json"
    assert "Accept" in answer["Vary"]
    body = answer.json()
    assert set(body) == JSON_KEYS and body["status"] == "ok"
    assert body["tasks"] == {"waiting": 0, "running": 0}


def test_a_browser_gets_a_page_with_sizes_and_times_for_people():
    Worker.beat("host-a:1")
    answer = Client().get("/status/", HTTP_ACCEPT=BROWSER)
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/html")
    assert "Accept" in answer["Vary"]
    page = answer.content.decode()
    assert '<span id="status-overall" class="status-ok">ok</span>' in page
    assert "pulp_downloads administration" in page  # the admin's look
    assert "filesystem, writable · " in page and " free of " in page
    assert " GB" in page or " TB" in page or " MB" in page  # human sizes, not raw bytes
    assert "1 online · last heartbeat " in page and " s ago" in page
    assert "0 waiting, 0 running" in page
    assert '"connected": true' not in page  # not the JSON
    assert "Latest tasks" not in page  # nothing of the tasks for an anonymous visitor


def test_format_chooses_either_answer():
    assert Client().get("/status/", {"format": "json"}, HTTP_ACCEPT=BROWSER).json()["status"] == "ok"
    html = Client().get("/status/", {"format": "html"})
    assert html["Content-Type"].startswith("text/html")


def test_staff_see_the_latest_tasks_a_partial_one_amber(client):
    client.force_login(User.objects.create_superuser("admin"))
    remote = Remote.objects.create(name="uxd-big", url="https://example.test/PULP_MANIFEST")
    task = SyncTask.objects.create(remote=remote, state="completed", files_total=10,
                                   files_done=8, files_failed=2, finished=timezone.now())
    page = client.get("/status/", HTTP_ACCEPT=BROWSER).content.decode()
    assert "Latest tasks" in page
    assert f'<a href="/admin/pulp_downloads/synctask/{task.pk}/change/">Sync of uxd-big</a>' in page
    assert "sync-state-partial" in page and ">Completed, 2 failed</span>" in page
