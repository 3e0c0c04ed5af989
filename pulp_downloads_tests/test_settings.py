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
    assert "SECRET_KEY is not set" in result.stderr


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


PRODUCTION = {"SECURE_SSL_REDIRECT": "1", "SESSION_COOKIE_SECURE": "1",
              "CSRF_COOKIE_SECURE": "1", "SECURE_HSTS_SECONDS": "31536000"}


def check_deploy(tmp_path, **env: str) -> subprocess.CompletedProcess:
    """``manage.py check --deploy --fail-level WARNING`` with DEBUG off, a strong key and
    ``env``."""
    import secrets

    clean = {k: v for k, v in os.environ.items()
             if k not in {"DEBUG", "SECRET_KEY", *PRODUCTION, "SECURE_HSTS_INCLUDE_SUBDOMAINS",
                          "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER"}}
    clean.update(SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0",
                 PULP_DOWNLOADS_VAR_DIR=str(tmp_path / "var"),
                 PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"), **env)
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level",
                           "WARNING"], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=120)


def test_check_deploy_is_clean_with_the_documented_production_variables(tmp_path):
    result = check_deploy(tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNINGS" not in result.stdout + result.stderr


def test_check_deploy_names_each_production_variable_left_unset(tmp_path):
    result = check_deploy(tmp_path)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, result.stderr
    for name in PRODUCTION:  # each one is read from the environment on its own
        alone = check_deploy(tmp_path, **{name: PRODUCTION[name]})
        assert alone.returncode != 0 and alone.stderr.count("security.W0") == 3, (
            name, alone.stderr)


def test_production_variables_set_the_settings(tmp_path):
    code = ("import settings, json; print(json.dumps([settings.SECURE_SSL_REDIRECT, "
            "settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE, "
            "settings.SECURE_HSTS_SECONDS, settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
            "settings.CSRF_COOKIE_HTTPONLY, settings.SECURE_PROXY_SSL_HEADER]))")
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", *PRODUCTION}}
    env.update(SECRET_KEY="x" * 50, MEDIA_ROOT=str(tmp_path / "m"), **PRODUCTION,
               SECURE_HSTS_INCLUDE_SUBDOMAINS="0", SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        '[true, true, true, 31536000, false, true, ["HTTP_X_FORWARDED_PROTO", "https"]]')
    env["SECURE_HSTS_SECONDS"] = "a year"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "SECURE_HSTS_SECONDS must be" in result.stderr


def test_a_content_origin_must_be_an_origin(tmp_path, settings):
    from django.core.checks import run_checks

    result = load_settings(SECRET_KEY="x" * 50, MEDIA_ROOT=str(tmp_path / "m"),
                           PULP_DOWNLOADS_CONTENT_ORIGIN="content.example.com/path")
    assert result.returncode != 0 and "PULP_DOWNLOADS_CONTENT_ORIGIN must be" in result.stderr
    env = dict(os.environ, SECRET_KEY="x" * 50, MEDIA_ROOT=str(tmp_path / "m"),
               ALLOWED_HOSTS="app.example.com",
               PULP_DOWNLOADS_CONTENT_ORIGIN="https://content.example.com")
    env.pop("DEBUG", None)
    result = subprocess.run([sys.executable, "-c", "import settings; print(settings.ALLOWED_HOSTS)"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['app.example.com', 'content.example.com']"
    settings.PULP_DOWNLOADS = {**settings.PULP_DOWNLOADS, "CONTENT_ORIGIN": "ftp://c.test"}
    assert [error.id for error in run_checks()] == ["pulp_downloads.E002"]
