"""A person in a browser: log into the admin, add a Remote, sync it, see the Artifacts.

Playwright drives Debian's Chromium (``make test`` installs it when missing). Set
``DOCS_SCREENSHOTS=DIR`` to save the screenshots used by the documentation.
"""
from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import User

from pulp_downloads.models import Artifact, SyncTask

from .browsing import admin_page, browser, held_remote, login, shot, sync_in_background  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


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

    page = login(browser, live_server, "admin", "admin-pass")
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/add/")
    page.fill("#id_name", "browser-repo")
    page.fill("#id_url", manifest_url)
    page.click("summary:has-text('Authentication')")
    # A new remote has no secret to keep or clear, nothing synced and no record yet.
    assert page.locator("input[name^=clear_]").count() == 0
    assert "Leave empty to keep" not in page.inner_text("#remote_form")
    assert page.locator("summary:has-text('Record')").count() == 0
    shot(page, "admin-remote-add")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")

    page.check("input[name=_selected_action]")
    page.select_option("select[name=action]", "sync_selected")
    page.click("button[name=index]")
    page.wait_for_selector("text=Sync of browser-repo queued")
    assert SyncTask.objects.get().state == "completed"

    page.goto(f"{live_server.url}/admin/pulp_downloads/artifact/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 6
    for artifact in Artifact.objects.all():
        assert page.locator(f"text={artifact.sha256}").count() == 1
    shot(page, "admin-artifacts")

    page.goto(f"{live_server.url}/admin/pulp_downloads/synctask/")
    assert page.locator("#result_list .sync-state-completed").count() == 1
    assert "6/6 files" in page.inner_text("#result_list")
    page.click("#result_list tbody tr th a")
    page.wait_for_selector("#sync-progress[data-state=completed]")
    assert page.inner_text("#sync-files") == "6 of 6 files"
    assert page.get_attribute("#sync-bar", "value") == "100"


def test_roles_and_secret_clearing_in_the_admin(browser, live_server, monkeypatch):
    """A viewer sees remotes without the sync action; an administrator who points a remote
    at a new origin is told its password was cleared."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    try:
        _roles_walk_through(browser, live_server)
    finally:
        from django.db import connections

        connections.close_all()


def _roles_walk_through(browser, live_server) -> None:
    from django.contrib.auth.models import Group

    from pulp_downloads.models import Remote

    remote = Remote.objects.create(name="guarded", url="https://one.test/repo/PULP_MANIFEST",
                                   username="alice", password="pw-SECRET")
    viewer = User.objects.create_user("viewer", password="viewer-pass", is_staff=True)
    viewer.groups.add(Group.objects.get(name="remote viewer"))
    page = login(browser, live_server, "viewer", "viewer-pass")
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/")
    page.wait_for_selector("text=guarded")
    assert page.locator("select[name=action] option[value=sync_selected]").count() == 0
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    assert page.locator("input[name=_save]").count() == 0  # read-only
    page.close()

    User.objects.create_superuser("admin", password="admin-pass")
    page = login(browser, live_server, "admin", "admin-pass")
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    page.fill("#id_url", "https://two.test/repo/PULP_MANIFEST")
    page.click("input[name=_save]")
    page.wait_for_selector("text=cleared password, which would now reach a server")
    remote.refresh_from_db()
    assert remote.password == "" and remote.url.startswith("https://two.test/")


# --- watching and managing syncs ----------------------------------------------------------------
BAR_VALUE = "() => Number(document.getElementById('sync-bar').value)"


def test_task_page_bar_moves_while_the_sync_runs_and_ends_at_100(admin_page, live_server,
                                                                  threaded_upstream):
    remote, gate = held_remote(threaded_upstream, "slow")
    thread, task = sync_in_background(remote)
    page = admin_page
    page.goto(f"{live_server.url}/admin/pulp_downloads/synctask/{task.pk}/change/")
    first = page.evaluate(BAR_VALUE)
    assert first == 0  # every file is held
    # The page polls the task and moves the bar without being reloaded: 10 files of 40
    # come, the others stay held.
    gate.let_through(10)
    page.wait_for_function(f"() => ({BAR_VALUE})() == 25")
    middle = page.evaluate(BAR_VALUE)
    page.wait_for_function("() => document.getElementById('sync-eta').textContent"
                           ".includes('left')")
    assert page.inner_text("#sync-rate").endswith("/s")
    shot(page, "admin-task-progress")
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    gate.open()
    page.wait_for_selector("#sync-progress[data-state=completed][data-polling='0']")
    thread.join(60)
    assert page.evaluate("() => window.sameDocument") is True  # no reload
    assert first <= middle < page.evaluate(BAR_VALUE) == 100
    assert page.inner_text("#sync-files") == "40 of 40 files"
    # Every part of the page followed: heading, state, Finished, Summary; no Cancel.
    assert page.inner_text("#task-title") == "Sync of slow Completed"
    assert page.inner_text(".field-live_state .readonly") == "Completed"
    assert page.inner_text(".field-live_finished .readonly") != "—"
    assert page.locator("#sync-summary").inner_text().count("40") >= 2  # listed, downloaded
    assert page.locator("#cancel-sync").count() == 0
    shot(page, "admin-task-completed")


def test_cancel_button_stops_a_running_sync(admin_page, live_server, threaded_upstream):
    remote, gate = held_remote(threaded_upstream, "to-cancel", files=60)
    thread, task = sync_in_background(remote)
    gate.let_through(5)  # five files come, the others stay held: the sync cannot end
    page = admin_page
    page.goto(f"{live_server.url}/admin/pulp_downloads/synctask/{task.pk}/change/")
    assert page.locator("a.deletelink").count() == 0  # no Delete on an active task
    page.click("#cancel-sync")
    page.wait_for_selector("text=Canceled the sync of to-cancel")
    thread.join(60)
    assert not thread.is_alive()
    task.refresh_from_db()
    assert task.state == "canceled" and task.files_done <= 5
    assert page.locator("#sync-progress[data-state=canceled]").count() == 1
    assert page.locator("#cancel-sync").count() == 0
    # The worker writes the summary after the cancel: the page shows it without a reload.
    page.evaluate("() => { window.sameDocument = true; }")
    page.wait_for_selector("[data-live=summary] #sync-summary")
    page.wait_for_selector("#sync-progress[data-polling='0']")
    assert page.evaluate("() => window.sameDocument") is True
    assert page.inner_text("#task-title") == "Sync of to-cancel Canceled"


def test_sync_now_on_the_remote_page_opens_the_task(admin_page, live_server, threaded_upstream):
    from pulp_downloads.models import Remote

    url = threaded_upstream.add_repo("now", {f"f{i}.bin": os.urandom(2000) for i in range(3)})
    remote = Remote.objects.create(name="now", url=url)
    page = admin_page
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    assert "Never synced" in page.inner_text("body")
    page.click("#sync-now")
    page.wait_for_selector("text=Sync of now queued")
    assert "/synctask/" in page.url
    page.wait_for_selector("#sync-progress[data-state=completed]")
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    history = page.locator("#sync-history tbody tr")
    assert history.count() == 1
    assert "Completed" in history.inner_text() and "3/3 files" in history.inner_text()
    shot(page, "admin-remote-history")


def test_mirrors_and_headers_are_edited_as_lines(admin_page, live_server):
    from pulp_downloads.models import Remote

    remote = Remote.objects.create(name="lines", url="https://one.test/repo/PULP_MANIFEST")
    page = admin_page
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    assert not page.is_visible("#id_mirrors")  # its section starts collapsed
    page.click("summary:has-text('Mirrors')")
    page.fill("#id_mirrors", "https://m1.test/repo/\n\nhttps://m2.test/repo/\n")
    page.click("summary:has-text('Request headers')")
    page.fill("#id_headers", "X-Tenant: blue\nnot a header")
    page.click("input[name=_save]")
    page.wait_for_selector("text=Line 2: expected 'Name: value'")
    page.fill("#id_headers", "X-Tenant: blue\nX-Trace: on")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was changed successfully")
    remote.refresh_from_db()
    assert remote.mirrors == ["https://m1.test/repo/", "https://m2.test/repo/"]
    assert remote.headers == {"X-Tenant": "blue", "X-Trace": "on"}
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    assert page.input_value("#id_mirrors") == "https://m1.test/repo/\nhttps://m2.test/repo/"
    # Header values are secrets: shown masked, and kept when saved as shown.
    assert page.input_value("#id_headers") == "X-Tenant: ********\nX-Trace: ********"
    page.click("input[name=_save]")
    page.wait_for_selector("text=was changed successfully")
    remote.refresh_from_db()
    assert remote.headers == {"X-Tenant": "blue", "X-Trace": "on"}


def test_landing_page_and_content_listing(admin_page, live_server, threaded_upstream):
    from pulp_downloads.models import Remote

    files = {"pool/a.bin": os.urandom(1500), "top.bin": os.urandom(700)}
    remote = Remote.objects.create(name="listed", url=threaded_upstream.add_repo("l", files))
    thread, task = sync_in_background(remote)  # Playwright's loop owns this thread
    thread.join(30)
    task.refresh_from_db()
    assert task.state == "completed"
    page = admin_page
    page.goto(f"{live_server.url}/admin/")
    page.click("text=View site")
    assert page.url == f"{live_server.url}/"
    for label in ("Administration", "REST API", "API documentation", "Status", "Content"):
        assert page.locator(f"#links a:has-text('{label}')").count() == 1
    shot(page, "landing")
    page.click("#links a:has-text('Status')")
    assert page.text_content("#status-overall") == "ok"  # a page for people, not JSON
    assert ", connected" in page.inner_text("#status-facts")
    page.go_back()
    page.click("#links a:has-text('Content')")
    page.click("#listing a:has-text('listed/')")
    page.wait_for_selector("text=Index of /content/listed/")
    page.click("#listing a:has-text('pool/')")
    page.wait_for_selector("text=Index of /content/listed/pool/")
    link = page.locator("#listing a:has-text('a.bin')")
    response = page.request.get(f"{live_server.url}/content/listed/pool/"
                                + link.get_attribute("href"))
    assert response.status == 200 and response.body() == files["pool/a.bin"]
    shot(page, "content-listing")


# --- upstream content never runs as the app -----------------------------------------------------
HOSTILE_PAGE = b"""<!doctype html>
<html><head><title>page</title></head><body><p id="text">served</p>
<script>
window.__pwned = true;
document.title = "pwned";
fetch("/api/remotes/").then(r => r.text()).then(t => { window.__read = t; });
const token = (document.cookie.match(/csrftoken=([^;]+)/) || [])[1];
fetch("/api/remotes/", {method: "POST", headers: {"Content-Type": "application/json",
      "X-CSRFToken": token}, body: JSON.stringify({name: "planted",
      url: "http://127.0.0.1:9/PULP_MANIFEST"})});
</script></body></html>
"""
HOSTILE_SVG = b"""<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20">
<rect width="20" height="20" fill="red"/>
<script>window.__pwned = true; fetch("/api/remotes/?from=svg");</script>
</svg>
"""


@pytest.mark.parametrize("server", ["live_server", "asgi_server"])
def test_a_script_in_synced_content_never_runs_for_a_logged_in_admin(
        browser, server, request, threaded_upstream, monkeypatch):
    """A remote's upstream serves an HTML page and an SVG with scripts that read the API and
    create a remote with the admin's session; opened by a logged-in administrator, through
    Django (WSGI) and through the ASGI fast path, the scripts never run."""
    from pulp_downloads.models import Remote

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    base = request.getfixturevalue(server)
    base = getattr(base, "url", base)
    files = {"page.html": HOSTILE_PAGE, "image.svg": HOSTILE_SVG}
    remote = Remote.objects.create(name="hostile", url=threaded_upstream.add_repo("h", files))
    thread, task = sync_in_background(remote)  # Playwright's loop owns this thread
    thread.join(30)
    task.refresh_from_db()
    assert task.state == "completed"
    User.objects.create_superuser("admin", password="admin-pass")
    page = login(browser, base, "admin", "admin-pass")
    try:
        api_requests = []
        page.on("request", lambda sent: api_requests.append(sent.url)
                if "/api/" in sent.url else None)
        for path, data in files.items():
            response = page.goto(f"{base}/content/hostile/{path}")
            assert response.status == 200
            assert response.body() == data and b"<script>" in data  # the script was served
            page.wait_for_load_state("load")
            assert page.evaluate("() => window.__pwned") is None, f"the script of {path} ran"
            assert response.headers["content-security-policy"] == "sandbox"
        page.goto(f"{base}/content/hostile/page.html")
        assert page.title() == "page" and page.inner_text("#text") == "served"
        assert api_requests == []
        assert not Remote.objects.filter(name="planted").exists()
    finally:
        page.close()
        from django.db import connections

        connections.close_all()


def test_admin_and_browsable_api_work_with_an_httponly_csrf_cookie(admin_page, live_server):
    """No script can read the CSRF cookie, and the admin's forms and the browsable API's
    DELETE (sent by its JavaScript) still pass the CSRF check."""
    from pulp_downloads.models import Remote

    page = admin_page
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["csrftoken"]["httpOnly"] is True
    assert "csrftoken" not in page.evaluate("() => document.cookie")
    remote = Remote.objects.create(name="to-edit", url="https://one.test/repo/PULP_MANIFEST")
    page.goto(f"{live_server.url}/admin/pulp_downloads/remote/{remote.pk}/change/")
    page.fill("#id_name", "edited")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was changed successfully")
    assert Remote.objects.get(pk=remote.pk).name == "edited"
    page.goto(f"{live_server.url}/api/remotes/{remote.pk}/")
    page.click("button[data-target='#deleteModal']")
    page.click("#deleteModal form[data-method=DELETE] button")
    page.wait_for_selector("text=HTTP 204 No Content")
    assert not Remote.objects.filter(pk=remote.pk).exists()
