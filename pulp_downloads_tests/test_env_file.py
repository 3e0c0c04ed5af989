"""The checkout's ``.env`` file: ``make env`` writes the demo's once, the settings read it (the
environment winning), and a missing or public ``SECRET_KEY`` is one line naming the file, from
``manage.py`` and from the ASGI servers alike."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from settings.demo_env import write_demo_env

from .upstream import free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
#: What a shell of someone who exported nothing holds.
BARE = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}


def bare_env(tmp_path: Path, env_file: Path | str, **extra: str) -> dict[str, str]:
    """No setting of the suite's: only ``env_file`` (and a private var/ and metrics)."""
    return {**BARE, "PULP_DOWNLOADS_ENV_FILE": str(env_file),
            "PULP_DOWNLOADS_VAR_DIR": str(tmp_path / "var"),
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), **extra}


def run(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def make_env(tmp_path: Path, env_file: Path) -> subprocess.CompletedProcess:
    """``make env``, the step of ``make run`` that writes the settings file."""
    return run(["make", "--no-print-directory", "-C", str(ROOT), "env",
                f"PULP_DOWNLOADS_ENV_FILE={env_file}",
                f"PULP_DOWNLOADS_VAR_DIR={tmp_path / 'var'}"], dict(BARE))


def settings_value(env: dict[str, str], expression: str) -> str:
    result = run([sys.executable, "-c", f"import settings; print({expression})"], env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_suite_reads_no_env_file():
    from django.conf import settings

    assert os.environ["PULP_DOWNLOADS_ENV_FILE"] == "" and settings.ENV_FILE is None


def test_make_env_writes_the_demo_settings_once_private_and_commented(tmp_path):
    env_file = tmp_path / "conf" / ".env"
    result = make_env(tmp_path, env_file)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote the demo's settings to {env_file}\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    lines = env_file.read_text().splitlines()
    settings_lines = [line for line in lines if line and not line.startswith("#")]
    assert [line.split("=")[0] for line in settings_lines] == [
        "SECRET_KEY", "SERVE_STATIC", "PULP_DOWNLOADS_ALLOWED_NETWORKS"]
    for line in settings_lines:  # each one says what it is for, just above it
        assert lines[lines.index(line) - 1].startswith("# ")
    assert "SERVE_STATIC=1" in lines and "PULP_DOWNLOADS_ALLOWED_NETWORKS=127.0.0.0/8" in lines
    key = settings_lines[0].partition("=")[2]
    assert len(key) >= 50

    env = bare_env(tmp_path, env_file)
    assert settings_value(env, "settings.SECRET_KEY") == key
    assert settings_value(env, "[settings.DEBUG, settings.SERVE_STATIC, "
                               "settings.PULP_DOWNLOADS['ALLOWED_NETWORKS']]") == (
        "[False, True, ['127.0.0.0/8']]")

    env_file.write_text(env_file.read_text() + "PULP_DOWNLOADS_CONCURRENCY=7\n")
    again = make_env(tmp_path, env_file)  # the next `make run`
    assert again.returncode == 0 and "PULP_DOWNLOADS_CONCURRENCY=7" in env_file.read_text()
    assert f"SECRET_KEY={key}" in env_file.read_text()


def test_make_env_carries_the_key_an_older_checkout_kept_in_var(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "secret-key").write_text("an-older-checkouts-key-" + "k" * 40 + "\n")
    env_file = tmp_path / ".env"
    result = make_env(tmp_path, env_file)
    assert result.returncode == 0, result.stderr
    assert f"(SECRET_KEY from {tmp_path / 'var' / 'secret-key'})" in result.stdout
    assert f"SECRET_KEY=an-older-checkouts-key-{'k' * 40}\n" in env_file.read_text()


def test_an_existing_file_is_never_overwritten(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=mine\n")
    assert write_demo_env(env_file) is False
    assert env_file.read_text() == "SECRET_KEY=mine\n"
    assert write_demo_env(tmp_path / "new.env") is True


def test_a_key_that_the_file_cannot_hold_as_is_is_refused(tmp_path):
    (tmp_path / "old-key").write_text("has # and spaces\n")
    with pytest.raises(ValueError, match="one word"):
        write_demo_env(tmp_path / ".env", tmp_path / "old-key")
    assert not (tmp_path / ".env").exists()


def test_the_environment_wins_over_the_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=from-the-file-" + "f" * 40 + "\n"
                        "PULP_DOWNLOADS_MAX_RETRIES=7\nPULP_DOWNLOADS_CONCURRENCY=4\n")
    env = bare_env(tmp_path, env_file, SECRET_KEY="from-the-environment-" + "e" * 40,
                   PULP_DOWNLOADS_CONCURRENCY="9")
    assert settings_value(env, "settings.SECRET_KEY") == "from-the-environment-" + "e" * 40
    assert settings_value(env, "[settings.PULP_DOWNLOADS[k] for k in ("
                               "'DEFAULT_MAX_RETRIES', 'DEFAULT_DOWNLOAD_CONCURRENCY')]") == "[7, 9]"


def test_a_relative_env_file_is_taken_from_the_project_root(tmp_path):
    env_file = tmp_path / "relative.env"
    env_file.write_text("SECRET_KEY=relative-" + "r" * 40 + "\n")
    env = bare_env(tmp_path, os.path.relpath(env_file, ROOT))
    assert settings_value(env, "settings.ENV_FILE") == str(env_file)
    assert settings_value(env, "settings.SECRET_KEY") == "relative-" + "r" * 40


def one_line_error(result: subprocess.CompletedProcess) -> str:
    """The only line of stderr, checked to be a clean error (status 1, no traceback)."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_a_missing_secret_key_is_one_line_naming_the_env_file(tmp_path):
    env_file = tmp_path / "nothing-here" / ".env"
    env = bare_env(tmp_path, env_file)
    for command in (["manage.py", "remote", "list"], ["manage.py", "migrate"],
                    ["-c", "import settings.asgi"], ["-c", "import settings.wsgi"]):
        line = one_line_error(run([sys.executable, *command], env))
        assert line == (f"Error: SECRET_KEY is not set: put SECRET_KEY=<a long random string> "
                        f"in {env_file} (make run writes one) or the environment, or set "
                        "DEBUG=1 on a development machine"), command
    without_file = one_line_error(run([sys.executable, "manage.py", "check"],
                                      bare_env(tmp_path, "")))
    assert "SECRET_KEY is not set" in without_file and "no .env file is read" in without_file


def test_traceback_shows_the_traceback_before_the_line(tmp_path):
    result = run([sys.executable, "manage.py", "check", "--traceback"],
                 bare_env(tmp_path, tmp_path / ".env"))
    assert result.returncode == 1 and result.stderr.startswith("Traceback")
    assert result.stderr.splitlines()[-1].startswith("Error: SECRET_KEY is not set")


def test_the_public_development_key_is_one_line_naming_the_env_file(tmp_path):
    import settings

    env_file = tmp_path / ".env"
    env_file.write_text(f"SECRET_KEY={settings._DEV_SECRET_KEY}\n")
    line = one_line_error(run([sys.executable, "manage.py", "remote", "list"],
                              bare_env(tmp_path, env_file)))
    assert "SECRET_KEY is the built-in development key" in line and str(env_file) in line
    assert settings._DEV_SECRET_KEY not in line


def test_malformed_values_are_one_line_naming_the_variable(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=" + "s" * 50 + "\nPULP_DOWNLOADS_CONCURRENCY=ten\n")
    line = one_line_error(run([sys.executable, "manage.py", "check"],
                              bare_env(tmp_path, env_file)))
    assert line == "Error: PULP_DOWNLOADS_CONCURRENCY must be a whole number, got 'ten'"
    env = bare_env(tmp_path, env_file, PULP_DOWNLOADS_CONCURRENCY="4",
                   PULP_DOWNLOADS_TASK_HEARTBEAT_TIMEOUT="a minute")
    assert "PULP_DOWNLOADS_TASK_HEARTBEAT_TIMEOUT must be a number" in one_line_error(
        run([sys.executable, "manage.py", "check"], env))
    env = bare_env(tmp_path, env_file, PULP_DOWNLOADS_CONCURRENCY="4",
                   PULP_DOWNLOADS_CONTENT_ORIGIN="content.example.com/path")
    assert "PULP_DOWNLOADS_CONTENT_ORIGIN must be" in one_line_error(
        run([sys.executable, "manage.py", "check"], env))


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_a_server_without_a_secret_key_exits_with_the_one_line(tmp_path, server):
    """The documented server commands stop at once, status 1, with the error as their only
    output from the application (granian then logs its worker's exit)."""
    env_file = tmp_path / ".env"
    port = str(free_port())
    args = {"uvicorn": [str(BIN / "uvicorn"), "settings.asgi:application", "--host",
                        "127.0.0.1", "--port", port],
            "granian": [str(BIN / "granian"), "--interface", "asginl", "--host", "127.0.0.1",
                        "--port", port, "--workers", "1", "settings.asgi:application"]}[server]
    result = run(args, bare_env(tmp_path, env_file), timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert f"Error: SECRET_KEY is not set: put SECRET_KEY=<a long random string> in {env_file}" \
        in output
    if server == "uvicorn":
        assert len(result.stderr.splitlines()) == 1, result.stderr
