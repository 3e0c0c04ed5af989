"""The documented commands run as printed in a checkout after ``make run``, nothing exported.

A copy of the checkout (its ``.venv`` linked to this one) gets its ``.env`` from the Makefile
as ``make run`` writes it; then the commands of docs/user-guide.md, docs/operations.md and
docs/content.md run there in a shell environment holding none of the project's variables:
no ``SECRET_KEY``, no ``DEBUG``, no outbound-policy exception for the loopback sample."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .upstream import free_port, wait_for_port
from .waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SAMPLE = ROOT / "pulp_downloads" / "fixtures" / "sample_repo"
#: What a checkout needs to run (docs, tests and benchmarks are not).
CHECKOUT = ("Makefile", "manage.py", "requirements.txt", "settings", "pulp_downloads")


def copy_checkout(into: Path) -> Path:
    into.mkdir()
    for name in CHECKOUT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, into / name)
    (into / ".venv").symlink_to(Path(sys.prefix))
    return into


def shell(checkout: Path, command: str, env: dict[str, str],
          timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``command`` in ``checkout`` as typed in a shell; it must exit 0, no traceback."""
    result = subprocess.run(shlex.split(command), cwd=checkout, env=env, capture_output=True,
                            text=True, timeout=timeout, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Traceback" not in output, (command, output[-3000:])
    return result


def documented(doc: str, command: str) -> str:
    """``command`` after checking that ``docs/<doc>`` shows it in that form."""
    assert command in (DOCS / doc).read_text(), f"{doc} no longer shows {command!r}"
    return command


def server_command(name: str, port: int) -> str:
    """docs/content.md's command for server ``name``, on loopback and one worker."""
    text = (DOCS / "content.md").read_text().replace("\\\n", " ")
    found = re.search(rf"^\.venv/bin/{name} .*$", text, re.MULTILINE)
    assert found, f"content.md shows no .venv/bin/{name} command"
    command = re.sub(r" +", " ", found.group(0))
    return (command.replace("--host 0.0.0.0", "--host 127.0.0.1")
            .replace("--port 8000", f"--port {port}").replace("--workers 4", "--workers 1"))


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, b""
    except OSError:
        return 0, b""


@pytest.fixture
def checkout(tmp_path):
    """A checkout after ``make run``'s set-up (``make migrate``: the ``.env``, the database)."""
    checkout = copy_checkout(tmp_path / "checkout")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    # -o: the venv is the suite's own, never reinstalled from here.
    made = shell(checkout, "make -o .venv/.installed migrate", env, timeout=300)
    lines = made.stdout.splitlines()
    assert lines[0] == "wrote the demo's settings to .env", made.stdout
    assert re.fullmatch(r"database ready: \d+ migrations applied", lines[1]), made.stdout
    assert len(lines) == 2, made.stdout  # no command echoes, no migration lines
    assert (checkout / ".env").stat().st_mode & 0o777 == 0o600
    return checkout, env


def test_the_documented_commands_run_after_make_run(checkout):
    checkout, env = checkout
    upstream_port = free_port()
    migrated = shell(checkout, documented("operations.md", ".venv/bin/python manage.py migrate"),
                     env)
    assert "No migrations to apply" in migrated.stdout
    # What `make run` does before it serves: the admin user, the `sample` remote synced.
    demo = shell(checkout, f".venv/bin/python manage.py demo --no-serve "
                           f"--upstream-port {upstream_port}", env)
    assert "Sync of 'sample' completed" in demo.stdout

    upstream = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(upstream_port), "--bind", "127.0.0.1",
         "--directory", str(SAMPLE)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(upstream_port)
        manifest = f"http://127.0.0.1:{upstream_port}/PULP_MANIFEST"
        listed = shell(checkout, documented("user-guide.md",
                                            ".venv/bin/python manage.py remote list"), env)
        assert "sample" in listed.stdout
        shown = shell(checkout, documented("user-guide.md", ".venv/bin/python manage.py "
                                           "remote show") + " sample", env)
        assert manifest in shown.stdout
        shell(checkout, documented("user-guide.md", ".venv/bin/python manage.py remote create")
              + f" again {manifest}", env)
        for name in ("sample", "again"):  # from the loopback upstream the .env allows
            shell(checkout, documented("user-guide.md", ".venv/bin/python manage.py "
                                       "sync_remote") + f" {name}", env)
        # The environment wins over the file: without the exception, loopback is refused.
        refused = subprocess.run(shlex.split(".venv/bin/python manage.py sync_remote again"),
                                 cwd=checkout, env={**env, "PULP_DOWNLOADS_ALLOWED_NETWORKS": ""},
                                 capture_output=True, text=True, timeout=180, check=False)
        assert refused.returncode != 0
        assert "outbound address policy" in refused.stdout + refused.stderr
    finally:
        upstream.terminate()
        upstream.wait(timeout=60)

    served = (SAMPLE / "packages" / "alpha" / "alpha-1.0.bin").read_bytes()
    for name in ("granian", "uvicorn"):
        port = free_port()
        server = subprocess.Popen(shlex.split(server_command(name, port)), cwd=checkout,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda base=base, server=server: (get(f"{base}/status/")[0] == 200
                                                       or server.poll() is not None),
                     f"{name} answering")
            assert server.poll() is None, server.communicate(timeout=60)[0].decode()[-3000:]
            assert get(f"{base}/content/sample/packages/alpha/alpha-1.0.bin") == (200, served)
            # Static files come from the application itself: SERVE_STATIC=1 in the .env.
            assert get(f"{base}/static/admin/css/base.css")[0] == 200
        finally:
            server.send_signal(signal.SIGINT)
            output = server.communicate(timeout=60)[0].decode(errors="replace")
        assert "Traceback" not in output, output[-3000:]
