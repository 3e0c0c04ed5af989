"""``manage.py demo`` (what ``make run`` runs): Ctrl-C stops it cleanly, and it starts again
at once on the same ports."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .upstream import free_port, wait_for_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


def test_ctrl_c_stops_the_demo_with_status_0_and_it_starts_again(subprocess_env, tmp_path):
    env = dict(subprocess_env, ADMIN_PASSWORD="demo-pass",
               PULP_DOWNLOADS_VAR_DIR=str(tmp_path / "var"))
    port, upstream_port = free_port(), free_port()
    for attempt in ("first", "again"):
        demo = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(port), "--upstream-port",
             str(upstream_port), "--web-workers", "1"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)  # its own process group, as a terminal's job
        try:
            wait_for_port(port, timeout=90)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status/", timeout=10) as reply:
                assert reply.status == 200
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
                assert b"/admin/" in reply.read()
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C: the whole group gets SIGINT
            output, _ = demo.communicate(timeout=60)
        finally:
            if demo.poll() is None:
                os.killpg(demo.pid, signal.SIGKILL)
                demo.wait()
        assert demo.returncode == 0, (attempt, output[-3000:])
        assert "is running" in output and "Stopped." in output, (attempt, output[-3000:])
        assert "CommandError" not in output and "Traceback" not in output, output[-3000:]
