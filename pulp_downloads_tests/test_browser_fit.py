"""Every admin list and page, and /status/, fits a 1280 px window: no column cut, nothing
wider than the window (issue 24). A running task's page follows it to its end without a
reload; a sync with failed files shows amber "Completed, N failed" wherever it shows."""
from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User

from pulp_downloads.models import Artifact, ContentUnit, Remote, SyncTask

from .browsing import VIEWPORT, browser, held_remote, login, overflowing, shot  # noqa: F401
from .browsing import sync_in_background, synced

pytestmark = pytest.mark.django_db(transaction=True)

#: A real mirror's manifest lives deep, and its packages have long names.
PREFIX = "pub/fedora/linux/releases/41/Everything/x86_64/os"
LONG_NAME = "Packages/l/libreoffice-langpack-en-24.8.4.2-3.fc41.x86_64-with-a-long-suffix"


@pytest.fixture
def page(browser, live_server, monkeypatch):
    """A 1280x800 page logged into the admin as a superuser (the ORM usable here)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    User.objects.create_superuser("admin", password="admin-pass")
    page = login(browser, live_server, "admin", "admin-pass", viewport=VIEWPORT)
    yield page
    page.close()
    from django.db import connections

    connections.close_all()


def visit(page, url: str, wait_for: str = "#content") -> None:
    """Open ``url`` and check the page fits the window."""
    page.goto(url)
    page.wait_for_selector(wait_for)
    assert overflowing(page) == [], url


def partial_remote(threaded_upstream) -> tuple[Remote, SyncTask]:
    """``uxd-big``: 8 files served, 2 listed but missing upstream, synced: a partial sync."""
    files = {f"{LONG_NAME}-{i}.rpm": os.urandom(20_000 + i) for i in range(8)}
    missing = "".join(f"{LONG_NAME}-gone-{i}.rpm,{f'{i:x}' * 64},1357417\n" for i in range(2))
    url = threaded_upstream.add_repo(PREFIX, files, extra_lines=missing)
    remote = Remote.objects.create(name="uxd-big", url=url)
    task = synced(remote)
    assert task.state == "completed" and task.files_failed == 2
    return remote, task


def test_every_admin_page_fits_1280_px(page, live_server, threaded_upstream):
    base = f"{live_server.url}/admin/pulp_downloads"
    remote, partial = partial_remote(threaded_upstream)

    visit(page, f"{base}/remote/", "#result_list")
    row = page.locator("#result_list tr", has_text="uxd-big")
    assert row.locator(".sync-state-partial").inner_text() == "Completed, 2 failed"
    shot(page, "admin-remotes")
    visit(page, f"{base}/remote/{remote.pk}/change/", "#sync-history")
    visit(page, f"{base}/remote/add/", "#id_name")
    assert page.locator("input[name^=clear_]").count() == 0
    assert "Leave empty to keep" not in page.inner_text("#content")

    visit(page, f"{base}/synctask/", "#result_list")
    assert page.inner_text("#result_list .sync-state-partial") == "Completed, 2 failed"
    shot(page, "admin-tasks")
    page.click("#result_list a.task-remote")  # the task's remote is a link to its page
    page.wait_for_selector(f"input[name=name][value='{remote.name}']")

    visit(page, f"{base}/synctask/{partial.pk}/change/", "#sync-failures")
    assert page.inner_text("#task-title") == "Sync of uxd-big Completed, 2 failed"
    assert page.locator("#sync-failures tbody tr").count() == 2
    error = page.locator("#sync-failures tbody td").nth(2)
    assert "404" in error.inner_text() and error.bounding_box()["height"] > 30  # wrapped
    shot(page, "admin-task-partial")

    visit(page, f"{base}/artifact/", "#result_list")
    assert page.locator("#result_list td.field-size_column", has_text="20.0 kB").count() == 8
    artifact = Artifact.objects.first()
    visit(page, f"{base}/artifact/{artifact.pk}/change/", ".field-sha512")
    for algorithm in ("sha224", "sha256", "sha384", "sha512"):
        shown = page.inner_text(f".field-{algorithm} .readonly")
        assert shown.replace("\n", "") == getattr(artifact, algorithm), algorithm
    assert page.locator("input[type=submit]").count() == 0  # view-only
    shot(page, "admin-artifact")

    visit(page, f"{base}/contentunit/", "#result_list")
    unit = ContentUnit.objects.filter(artifact__isnull=False).first()
    visit(page, f"{base}/contentunit/{unit.pk}/change/", ".field-relative_path")
    assert page.inner_text("h1") == "View content unit"
    assert page.locator("input[type=submit]").count() == 0

    visit(page, f"{live_server.url}/status/", "#status-facts")
    assert page.inner_text("#status-tasks .sync-state-partial") == "Completed, 2 failed"
    shot(page, "status")


def test_a_running_task_page_fits_and_follows_the_task_to_its_end(page, live_server,
                                                                  threaded_upstream):
    remote, gate = held_remote(threaded_upstream, "uxd-running", files=20)
    thread, task = sync_in_background(remote)
    visit(page, f"{live_server.url}/admin/pulp_downloads/synctask/{task.pk}/change/",
          "#sync-progress[data-polling='1']")
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    gate.let_through(5)
    page.wait_for_function("() => document.getElementById('sync-bar').value == 25")
    assert page.inner_text("#task-title") == "Sync of uxd-running Running"
    assert page.inner_text(".field-live_started .readonly") != "—"
    assert overflowing(page) == []
    gate.open()
    page.wait_for_selector("#sync-progress[data-state=completed][data-polling='0']")
    thread.join(60)
    assert page.evaluate("() => window.sameDocument") is True
    assert page.inner_text("#task-title") == "Sync of uxd-running Completed"
    assert page.inner_text(".field-live_finished .readonly") != "—"
    assert "20" in page.inner_text("#sync-summary")
    assert overflowing(page) == []
