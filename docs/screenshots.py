"""Regenerate the pictures of docs/user-guide.md: ``make screenshots``.

1. The admin pages (task progress, Remote page, task list, a partial sync, listings,
   /status/ ...): the browser tests of ``pulp_downloads_tests/test_browser.py`` and
   ``test_browser_fit.py`` save them when ``DOCS_SCREENSHOTS`` names a directory.
2. The command line's progress bars: ``manage.py sync_remote`` runs in a pseudo-terminal
   against a slow loopback upstream; a terminal emulator (pyte) keeps the screen, captured
   mid-sync and at the end, and Chromium renders each capture to PNG.

Everything runs on 127.0.0.1 with a throw-away database and media root.
"""
from __future__ import annotations

import asyncio
import hashlib
import html
import os
import pty
import select
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pyte
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"
COLUMNS, LINES = 100, 8
FILES = 200
DELAY = 0.1  # seconds per file, so the bars are caught moving
#: The browser tests that save the admin pages' pictures.
BROWSER_TESTS = ("pulp_downloads_tests/test_browser.py",
                 "pulp_downloads_tests/test_browser_fit.py")


def browser_screenshots() -> None:
    env = dict(os.environ, DOCS_SCREENSHOTS=str(IMAGES))
    subprocess.run([sys.executable, "-m", "pytest", "-q", *BROWSER_TESTS],
                   cwd=ROOT, env=env, check=True)


def slow_upstream(files: dict[str, bytes]) -> tuple[str, web.AppRunner, asyncio.AbstractEventLoop]:
    """Serve ``files`` and their PULP_MANIFEST on 127.0.0.1, each file after DELAY s."""
    manifest = "".join(f"{name},{hashlib.sha256(data).hexdigest()},{len(data)}\n"
                       for name, data in files.items())

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name == "PULP_MANIFEST":
            return web.Response(text=manifest)
        await asyncio.sleep(DELAY)
        return web.Response(body=files[name])

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/repo/{name:.+}", serve)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    threading.Thread(target=loop.run_forever, daemon=True).start()
    return f"http://127.0.0.1:{port}/repo/PULP_MANIFEST", runner, loop


def capture_terminal(command: list[str], env: dict[str, str]) -> list[list[str]]:
    """Run ``command`` in a pseudo-terminal; the screen mid-run and at the end."""
    screen = pyte.Screen(COLUMNS, LINES)
    stream = pyte.ByteStream(screen)
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, on a terminal of COLUMNS x LINES
        import fcntl
        import struct
        import termios

        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        os.chdir(ROOT)
        os.execve(command[0], command, env)
    captures: list[list[str]] = []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            stream.feed(chunk)
        if not captures and 40 <= _percent(screen.display) <= 70:
            captures.append(list(screen.display))
    os.waitpid(pid, 0)
    captures.append(list(screen.display))
    return captures


def _percent(display: list[str]) -> int:
    """The percentage on the first bar of the screen, or -1."""
    import re

    match = re.search(r"(\d+)%\|", "\n".join(display))
    return int(match.group(1)) if match else -1


def render(lines: list[str], target: Path, prompt: str) -> None:
    """A terminal window with ``lines`` on it, as PNG."""
    from playwright.sync_api import sync_playwright

    body = html.escape("\n".join([prompt, *[line.rstrip() for line in lines]]).rstrip())
    page_html = (
        "<html><body style='margin:0;background:#fff'><pre style=\"margin:12px;padding:14px;"
        "background:#1e1e1e;color:#e6e6e6;border-radius:6px;font:14px/1.35 'DejaVu Sans Mono',"
        f"monospace;display:inline-block\">{body}</pre></body></html>")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1000, "height": 200})
        page.set_content(page_html)
        page.locator("pre").screenshot(path=str(target))
        browser.close()


def terminal_screenshots() -> None:
    files = {f"pool/pkg-{i:03d}.rpm": os.urandom(200_000) for i in range(FILES)}
    url, runner, loop = slow_upstream(files)
    with tempfile.TemporaryDirectory() as scratch:
        env = dict(os.environ, SECRET_KEY="screenshots-only", DEBUG="0",
                   DATABASE_URL=f"sqlite:///{scratch}/db.sqlite3", MEDIA_ROOT=f"{scratch}/media",
                   PULP_DOWNLOADS_ALLOWED_NETWORKS="127.0.0.0/8",
                   COLUMNS=str(COLUMNS), LINES=str(LINES), TERM="xterm-256color")
        manage = [sys.executable, "manage.py"]
        subprocess.run([*manage, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
        subprocess.run([*manage, "remote", "create", "fedora", url, "--concurrency", "4"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        captures = capture_terminal([*manage, "sync_remote", "fedora"], env)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    prompt = "$ python manage.py sync_remote fedora"
    render(captures[0], IMAGES / "cli-sync-progress.png", prompt)
    render(captures[-1], IMAGES / "cli-sync-done.png", prompt)


if __name__ == "__main__":
    IMAGES.mkdir(parents=True, exist_ok=True)
    terminal_screenshots()
    if "--terminal-only" not in sys.argv:
        browser_screenshots()
    print(f"pictures written to {IMAGES}")
