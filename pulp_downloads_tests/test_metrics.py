"""``GET /metrics``: Prometheus text gathered over the processes, protected by a permission
or a token; counters move by what a sync and content requests did."""
from __future__ import annotations

import os
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from pulp_downloads.models import Remote
from pulp_downloads.sync import sync_remote
from pulp_downloads.sync.summary import SyncError

from .upstream import status_fault

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "metrics-token-for-tests"


@pytest.fixture
def scraper(settings):
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "METRICS_TOKEN": TOKEN}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    return client


def samples(client) -> dict[tuple, float]:
    """``{(sample name, sorted labels): value}`` of one scrape."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def moved(before: dict, after: dict, name: str, **labels) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_need_the_permission_or_the_token(scraper, make_user):
    anonymous = APIClient().get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous["WWW-Authenticate"].startswith('Bearer realm="metrics"')
    stranger = APIClient()
    stranger.force_login(make_user("stranger"))
    assert stranger.get("/metrics").status_code == 403  # known, but not allowed
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.get("/metrics").status_code == 401
    operator = APIClient()
    operator.force_login(make_user("op", "remote operator"))  # a session
    assert operator.get("/metrics").status_code == 200
    assert scraper.get("/metrics").status_code == 200


def basic(user: str, password: str) -> APIClient:
    import base64

    client = APIClient()
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {pair}")
    return client


def test_metrics_take_the_apis_basic_and_token_authentication(make_user):
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    make_user("op", "remote operator")
    make_user("viewer", "remote viewer")  # no view_metrics
    make_user("root", is_superuser=True)
    assert basic("op", "op-pass").get("/metrics").status_code == 200
    assert basic("root", "root-pass").get("/metrics").status_code == 200
    refused = basic("viewer", "viewer-pass").get("/metrics")
    assert refused.status_code == 403 and b"viewer may not read the metrics" in refused.content
    wrong = basic("op", "not-the-password").get("/metrics")
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong
    assert b"Invalid username/password" in wrong.content
    for user, status in (("op", 200), ("viewer", 403)):
        client = APIClient()
        key = Token.objects.create(user=User.objects.get(username=user)).key
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        assert client.get("/metrics").status_code == status, user
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION="Token not-a-key")
    assert forged.get("/metrics").status_code == 401


def test_a_sync_moves_the_download_counters(scraper, threaded_upstream):
    files = {f"f{i}.bin": os.urandom(10_000 + i) for i in range(4)}
    url = threaded_upstream.add_repo("m", files)
    threaded_upstream.faults["m/f0.bin"].append(status_fault(503))  # retried once
    del threaded_upstream.files["m/f3.bin"]  # 404: fails
    remote = Remote.objects.create(name="measured", url=url, max_retries=1)
    before = samples(scraper)
    with pytest.raises(SyncError):
        sync_remote(remote)
    after = samples(scraper)
    # The manifest is a download too: 3 files and PULP_MANIFEST succeeded.
    stored = sum(len(files[f"f{i}.bin"]) for i in range(3))
    stored += len(threaded_upstream.files["m/PULP_MANIFEST"])
    assert moved(before, after, "pulp_downloads_downloads_total",
                 remote="measured", outcome="ok") == 4
    assert moved(before, after, "pulp_downloads_downloads_total",
                 remote="measured", outcome="not_found") == 1
    assert moved(before, after, "pulp_downloads_downloaded_bytes_total",
                 remote="measured") == stored
    assert moved(before, after, "pulp_downloads_retries_total", reason="http_503") == 1
    assert moved(before, after, "pulp_downloads_download_duration_seconds_count",
                 remote="measured") == 4
    assert after[("pulp_downloads_downloads_in_flight", (("remote", "measured"),))] == 0
    assert after[("pulp_downloads_sync_tasks", (("state", "completed"),))] == 0  # not a task


def test_sync_tasks_and_content_requests_are_counted(scraper, threaded_upstream, asgi_server):
    from pulp_downloads.tasks import run_sync_now

    url = threaded_upstream.add_repo("c", {"a.bin": os.urandom(5000)})
    other = threaded_upstream.add_repo("s", {"a.bin": os.urandom(5000)})  # never stored
    stored = Remote.objects.create(name="stored", url=url)
    streamed = Remote.objects.create(name="streamed", url=other, policy="streamed")
    assert run_sync_now(stored).state == "completed"
    assert run_sync_now(streamed).state == "completed"
    before = samples(scraper)
    for path in ("stored/a.bin", "stored/a.bin", "streamed/a.bin", "stored/missing.bin"):
        try:
            with urllib.request.urlopen(f"{asgi_server}/content/{path}", timeout=30) as reply:
                reply.read()
        except urllib.error.HTTPError as error:
            assert error.code == 404
    after = samples(scraper)
    assert after[("pulp_downloads_sync_tasks", (("state", "completed"),))] == 2
    assert moved(before, after, "pulp_downloads_content_requests_total",
                 status="200", source="storage") == 2
    assert moved(before, after, "pulp_downloads_content_requests_total",
                 status="200", source="streamed") == 1
    assert moved(before, after, "pulp_downloads_content_requests_total",
                 status="404", source="none") == 1, {
        k: v for k, v in after.items() if "content_requests_total" in k[0]}


def test_metrics_of_a_worker_process_are_gathered(scraper, threaded_upstream, subprocess_env,
                                                  settings):
    """A sync run by a real ``db_worker`` shows in the web process's /metrics (multiprocess
    mode: both write under the same PROMETHEUS_MULTIPROC_DIR)."""
    import subprocess
    import sys
    from pathlib import Path

    from pulp_downloads.tasks import enqueue_sync

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    files = {f"w{i}.bin": os.urandom(5000 + i) for i in range(3)}
    remote = Remote.objects.create(name="on-worker", url=threaded_upstream.add_repo("w", files))
    before = samples(scraper)
    enqueue_sync(remote)
    worker = subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay"],
        cwd=Path(__file__).resolve().parent.parent, env=subprocess_env, capture_output=True,
        text=True, timeout=120)
    assert worker.returncode == 0, worker.stderr[-2000:]
    after = samples(scraper)
    assert moved(before, after, "pulp_downloads_downloads_total",
                 remote="on-worker", outcome="ok") == 4  # 3 files and the manifest
    assert after[("pulp_downloads_sync_tasks", (("state", "completed"),))] == 1
