"""A person in a browser: Debian's Chromium driven by Playwright, logged into the admin of
the live server, and helpers to run syncs the test holds and to check what a page shows.

Set ``DOCS_SCREENSHOTS=DIR`` to save the screenshots used by the documentation
(:func:`shot`).
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from django.contrib.auth.models import User

from pulp_downloads.models import Remote, SyncTask

from .upstream import held_fault
from .waiting import wait_for

CHROMIUM = "/usr/bin/chromium"
#: Milliseconds a page may take to show what a test waits for: only a failure takes that
#: long (the task page polls every second), a loaded machine merely takes longer.
WAIT_MS = 60_000
#: The window of the person of issue 24: everything must fit it.
VIEWPORT = {"width": 1280, "height": 800}

#: Everything on the page that reaches past the window's right edge, or is cut by a box
#: that scrolls sideways; ``[]`` when the page fits.
OVERFLOW = """() => {
  const width = window.innerWidth;
  const seen = [];
  const name = (node) => node.tagName.toLowerCase() + (node.id ? "#" + node.id : "")
      + (node.className && typeof node.className === "string"
         ? "." + node.className.trim().split(/\\s+/).join(".") : "");
  if (document.documentElement.scrollWidth > width) {
    seen.push("document is " + document.documentElement.scrollWidth + " px wide");
  }
  for (const node of document.querySelectorAll("body *")) {
    const box = node.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) { continue; }  // hidden, or visually hidden
    if (box.right > width + 0.5) {
      seen.push(name(node) + " ends at " + Math.round(box.right) + " px");
    } else if (node.scrollWidth > node.clientWidth + 1
               && ["auto", "scroll", "hidden"].includes(getComputedStyle(node).overflowX)) {
      seen.push(name(node) + " cuts " + (node.scrollWidth - node.clientWidth) + " px");
    }
  }
  for (const table of document.querySelectorAll("table")) {
    const right = table.getBoundingClientRect().right;
    if (right > width) { seen.push("table " + name(table) + " ends at " + right); }
  }
  return seen;
}"""


def overflowing(page) -> list[str]:
    """What the page shows past the window's width or cut (:data:`OVERFLOW`)."""
    return page.evaluate(OVERFLOW)


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
    """Save the page as ``DOCS_SCREENSHOTS/name.png`` when that variable is set."""
    target = os.environ.get("DOCS_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / f"{name}.png"), full_page=True)


def login(browser, live_server, username: str, password: str, viewport: dict | None = None):
    """A new page logged into the admin of ``live_server`` (the fixture, or a base URL)."""
    page = browser.new_page(viewport=viewport or {"width": 1280, "height": 900})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{getattr(live_server, 'url', live_server)}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


@pytest.fixture
def admin_page(browser, live_server, monkeypatch):
    """A page logged into the admin as a superuser (the ORM usable from the test)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    User.objects.create_superuser("admin", password="admin-pass")
    page = login(browser, live_server, "admin", "admin-pass")
    yield page
    page.close()
    from django.db import connections

    connections.close_all()


def held_remote(threaded_upstream, name: str, files: int = 40, **fields):
    """A remote whose files the upstream holds until the test lets them through (two are
    asked at a time); returns the remote and the gate holding its files."""
    gate = threaded_upstream.gate()
    content = {f"pool/{i:03d}.bin": os.urandom(50_000) for i in range(files)}
    url = threaded_upstream.add_repo(name, content)
    for path in content:
        threaded_upstream.faults[f"{name}/{path}"].append(held_fault(gate))
    return Remote.objects.create(name=name, url=url, download_concurrency=2, **fields), gate


def sync_in_background(remote):
    """Start a sync of ``remote`` in a thread; returns the thread and its SyncTask."""
    from pulp_downloads.tasks import run_sync_now

    def run() -> None:
        from django.db import connections

        try:
            run_sync_now(remote)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(SyncTask.objects.filter(remote=remote).exists, "the sync to start")
    return thread, SyncTask.objects.get(remote=remote)


def synced(remote) -> SyncTask:
    """Sync ``remote`` on a thread of its own (Playwright's loop owns the test's thread)
    and return the ended task."""
    thread, task = sync_in_background(remote)
    thread.join(60)
    assert not thread.is_alive(), "the sync did not end"
    task.refresh_from_db()
    return task
