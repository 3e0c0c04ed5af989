"""A person in a browser: log into the admin, add a Remote, sync it, see the Artifacts.

Playwright drives Debian's Chromium (``make test`` installs it when missing). Set
``DOCS_SCREENSHOTS=DIR`` to save the screenshots used by the documentation.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from pulp_downloads.models import Artifact, SyncTask

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        try:
            yield browser
        finally:
            browser.close()


def shot(page, name: str) -> None:
    target = os.environ.get("DOCS_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def test_admin_adds_a_remote_syncs_it_and_sees_artifacts(browser, live_server, threaded_upstream,
                                                         monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls below are safe,
    # but they get a database connection of their own, closed at the end.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        _walk_through(browser, live_server, threaded_upstream)
    finally:
        from django.db import connections

        connections.close_all()


def _walk_through(browser, live_server, threaded_upstream) -> None:
    User.objects.create_superuser("admin", password="admin-pass")
    files = {f"pool/pkg-{i}.bin": os.urandom(4096 + i) for i in range(6)}
    manifest_url = threaded_upstream.add_repo("repo", files)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "admin-pass")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")

    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/add/")
    page.fill("#id_name", "browser-repo")
    page.fill("#id_url", manifest_url)
    page.fill("#id_password", "")
    shot(page, "admin-remote-add")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "sync_selected")
    page.click("button[name=index]")
    page.wait_for_selector("text=Sync of browser-repo queued")
    shot(page, "admin-sync-action")
    assert SyncTask.objects.get().state == "completed"

    page.goto(f"{live_server.url}/admin/pulp_downloads/artifact/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 6
    for artifact in Artifact.objects.all():
        assert page.locator(f"text={artifact.sha256}").count() == 1
    shot(page, "admin-artifacts")

    page.goto(f"{live_server.url}/admin/pulp_downloads/synctask/")
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("text=6/6 files")
    shot(page, "admin-sync-task")


def test_roles_and_secret_clearing_in_the_admin(browser, live_server, monkeypatch):
    """A viewer sees remotes without the sync action; an administrator who points a remote
    at a new origin is told its password was cleared."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        _roles_walk_through(browser, live_server)
    finally:
        from django.db import connections

        connections.close_all()


def _login(browser, live_server, username: str, password: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _roles_walk_through(browser, live_server) -> None:
    from django.contrib.auth.models import Group

    from pulp_downloads.models import Remote

    remote = Remote.objects.create(name="guarded", url="https://one.test/repo/PULP_MANIFEST",
                                   username="alice", password="pw-SECRET")
    viewer = User.objects.create_user("viewer", password="viewer-pass", is_staff=True)
    viewer.groups.add(Group.objects.get(name="remote viewer"))
    page = _login(browser, live_server, "viewer", "viewer-pass")
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/")
    page.wait_for_selector("text=guarded")
    assert page.locator("select[name=action] option[value=sync_selected]").count() == 0
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0  # read-only
    page.close()

    User.objects.create_superuser("admin", password="admin-pass")
    page = _login(browser, live_server, "admin", "admin-pass")
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    page.fill("#id_url", "https://two.test/repo/PULP_MANIFEST")
    page.click("input[name=_save]")
    page.wait_for_selector("text=cleared password, which would now reach a server")
    shot(page, "admin-secret-cleared")
    remote.refresh_from_db()
    assert remote.password == "" and remote.url.startswith("https://two.test/")
