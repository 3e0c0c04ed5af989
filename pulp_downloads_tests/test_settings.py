"""Settings come from the environment with safe defaults."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DATABASE_URL"}}
    clean.update(env)
    code = "import settings, json; print(json.dumps([settings.DEBUG, settings.DATABASES['default']['ENGINE'], settings.MEDIA_ROOT]))"
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=60)


def test_refuses_to_start_without_secret_key_when_debug_is_off():
    result = load_settings(DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_starts_with_secret_key_when_debug_is_off(tmp_path):
    result = load_settings(DEBUG="0", SECRET_KEY="x" * 50, MEDIA_ROOT=str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert '[false, "django.db.backends.sqlite3"' in result.stdout
    assert str(tmp_path / "m") in result.stdout


def test_database_url_selects_postgresql():
    result = load_settings(DATABASE_URL="postgres://postgres@127.0.0.1:5432/test",
                           SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stderr
    assert "django.db.backends.postgresql" in result.stdout


def test_bad_debug_value_is_a_clear_error():
    result = load_settings(DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_debug_is_off_unless_set(tmp_path):
    result = load_settings(SECRET_KEY="x" * 50, MEDIA_ROOT=str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[false,")


def test_refuses_the_development_secret_key_when_debug_is_off():
    import settings

    result = load_settings(DEBUG="0", SECRET_KEY=settings._DEV_SECRET_KEY)
    assert result.returncode != 0
    assert "SECRET_KEY is the built-in development key" in result.stderr
