"""The environment the settings read: the checkout's ``.env`` file, and typed values.

:func:`load_env_file` runs first thing in ``settings/__init__.py``: it puts the variables of
the project's ``.env`` file (``make run`` writes one for the demo) into ``os.environ``,
without replacing any variable the process was given, so everything read afterwards (the
settings, ``PROMETHEUS_MULTIPROC_DIR``, ``settings.asgi``) sees one environment.
``PULP_DOWNLOADS_ENV_FILE`` names another file; empty, no file is read.

The ``env_*`` readers turn a variable into a typed value, and a bad one into a
:class:`ConfigurationError` naming the variable.
"""
from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

#: The variable naming the settings file (unset: ``.env`` at the project root; empty: none).
ENV_FILE_VARIABLE = "PULP_DOWNLOADS_ENV_FILE"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigurationError(ImproperlyConfigured, SystemExit):
    """A setting is missing or malformed; the message says which and how to fix it.

    It is an ``ImproperlyConfigured`` for Django and for code that catches that, and a
    ``SystemExit`` whose code is ``"Error: <message>"`` where nobody catches it: a server
    importing ``settings.asgi`` (uvicorn, granian's worker processes) then exits with
    status 1 and that one line on stderr instead of a traceback. ``manage.py`` prints the
    same line for every ``ImproperlyConfigured``.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = f"Error: {message}"


def env_file_path(base_dir: Path) -> Path | None:
    """The settings file to read: ``PULP_DOWNLOADS_ENV_FILE`` (relative to ``base_dir``, the
    project root, as ``make`` takes it), else ``base_dir/.env``; ``None`` when the variable is
    set but empty."""
    named = os.environ.get(ENV_FILE_VARIABLE)
    if named is None:
        return base_dir / ".env"
    if not named.strip():
        return None
    return Path(os.path.abspath(base_dir / Path(named.strip()).expanduser()))


def load_env_file(base_dir: Path) -> Path | None:
    """Add the variables of :func:`env_file_path` to ``os.environ`` (those already set win);
    returns that path, which need not exist (a missing file sets nothing)."""
    path = env_file_path(base_dir)
    if path is not None and path.is_file():
        from dotenv import load_dotenv

        load_dotenv(path, override=False)
    return path


def env_bool(name: str, default: bool) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case); ``default`` when unset or empty."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be a boolean (1/0, true/false), got {value!r}")


def env_list(name: str, default: list[str], sep: str = ",") -> list[str]:
    """The ``sep``-separated items of ``name``, stripped, empty ones dropped; ``default`` when
    unset (set but empty: an empty list)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(sep) if item.strip()]


def env_int(name: str, default: int) -> int:
    """A whole number; ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a whole number, got {value!r}") from None


def env_float(name: str, default: float) -> float:
    """A number (seconds, mostly); ``default`` when unset or empty."""
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {value!r}") from None
