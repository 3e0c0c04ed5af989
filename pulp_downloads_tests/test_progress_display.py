"""Progress bars and log lines of ``sync_remote`` and ``repair`` on a real terminal: a log
line written while the bars are shown lands on a line of its own, above them, never inside
a bar; a repair that reads no byte shows no byte counts."""
from __future__ import annotations

import io
import os
import re

import pytest
from django.core.management import CommandError, call_command

from pulp_downloads.models import Artifact, Remote
from pulp_downloads.tasks import run_sync_now

from .terminal import Terminal
from .upstream import sha256, status_fault

pytestmark = pytest.mark.django_db(transaction=True)
#: The start of a line of the project's log format: "2026-01-02 03:04:05,678 WARNING ...".
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) ")
BAR = re.compile(r"(files|bytes): .*\|")


def log_and_bar_lines(lines: list[str]) -> tuple[list[str], list[str]]:
    """The lines holding a log record, and those holding a bar; a line with both is a log
    line that landed inside a bar."""
    logs = [line for line in lines if LOG_LINE.search(line)]
    bars = [line for line in lines if BAR.search(line)]
    return logs, bars


def assert_apart(lines: list[str], logged: str) -> None:
    logs, bars = log_and_bar_lines(lines)
    assert bars, lines
    assert any(logged in line for line in logs), lines
    mixed = [line for line in logs if BAR.search(line) or not LOG_LINE.match(line)]
    assert mixed == [], "\n".join(lines)


def test_a_warning_during_a_sync_is_written_above_the_bars(threaded_upstream, subprocess_env):
    files = {f"f{i}.bin": os.urandom(3000 + i) for i in range(4)}
    url = threaded_upstream.add_repo("bars", files)
    threaded_upstream.faults["bars/f2.bin"].append(status_fault(404))
    Remote.objects.create(name="bars", url=url, max_retries=0)
    terminal = Terminal("sync_remote", "bars", env=subprocess_env)
    assert terminal.finish() == 1  # one file failed
    lines = terminal.screen()
    assert_apart(lines, "sync of bars: f2.bin failed: HTTP 404")
    assert any(re.search(r"files: .*3/4", line) for line in lines), lines
    assert any(re.search(r"bytes: .*9\.00k/12\.0k", line) for line in lines), lines


@pytest.fixture
def damaged_remote(threaded_upstream):
    """A synced remote of 4 files, r0.bin and r1.bin deleted from storage."""
    files = {f"r{i}.bin": os.urandom(20_000 + i) for i in range(4)}
    remote = Remote.objects.create(name="rep", url=threaded_upstream.add_repo("rep", files))
    assert run_sync_now(remote).state == "completed"
    for name in ("r0.bin", "r1.bin"):
        os.unlink(Artifact.objects.get(sha256=sha256(files[name])).file.path)
    return remote


def test_repair_log_lines_are_written_above_its_bar(damaged_remote, subprocess_env):
    env = dict(subprocess_env, PULP_DOWNLOADS_LOG_LEVEL="INFO")
    terminal = Terminal("repair", "-v", "2", env=env)
    assert terminal.finish() == 0, terminal.text[-3000:]
    lines = terminal.screen()
    assert_apart(lines, "repaired artifact/")
    assert_apart(lines, "repair: 4 checked, 2 missing, 0 corrupt, 2 repaired")
    # Sizes only: no byte is read, so there is no byte bar ("0 bytes of 0 bytes").
    assert not any(line.startswith("bytes") for line in lines), lines
    assert "repair: 4 checked, 2 missing, 0 corrupt, 2 repaired, 0 unrepairable." in lines


def test_repair_verifying_digests_shows_its_byte_bar(damaged_remote, subprocess_env):
    terminal = Terminal("repair", "--verify-digests", env=subprocess_env)
    assert terminal.finish() == 0, terminal.text[-3000:]
    assert any(re.search(r"bytes: .*80\.0k/80\.0k", line) for line in terminal.screen())


def test_repair_progress_lines_leave_out_the_bytes_it_does_not_read(damaged_remote):
    out = io.StringIO()
    call_command("repair", stdout=out)
    progress = [line for line in out.getvalue().splitlines() if line.startswith("progress:")]
    assert progress[-1] == "progress: 4/4 files"
    out = io.StringIO()
    call_command("repair", "--verify-digests", stdout=out)
    progress = [line for line in out.getvalue().splitlines() if line.startswith("progress:")]
    assert progress[-1] == "progress: 4/4 files, 80.0 kB of 80.0 kB"


def test_the_sync_info_line_shows_with_verbosity_2_only(damaged_remote, subprocess_env):
    env = dict(subprocess_env, PULP_DOWNLOADS_LOG_LEVEL="INFO")
    quiet = Terminal("sync_remote", "rep", env=env)
    assert quiet.finish() == 0
    assert not any("sync of rep: 4 listed" in line for line in quiet.screen()), quiet.screen()
    chatty = Terminal("sync_remote", "rep", "-v", "2", env=env)
    assert chatty.finish() == 0
    assert_apart(chatty.screen(), "sync of rep: 4 listed")


def test_a_failed_repair_still_exits_non_zero(damaged_remote, threaded_upstream):
    del threaded_upstream.files["rep/r0.bin"]
    with pytest.raises(CommandError, match="1 of 2 damaged file"):
        call_command("repair", "--quiet", stdout=io.StringIO())
