"""The command line of the project's ASGI application under one of its documented servers."""
from __future__ import annotations

import sys
from pathlib import Path

SERVERS = ("uvicorn", "granian")


def app_server_command(server: str, port: int, workers: int = 1) -> list[str]:
    """Serve ``settings.asgi:application`` on 127.0.0.1:``port`` with ``workers`` processes,
    logging warnings only and no access log."""
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "settings.asgi:application", "--host",
                "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--log-level", "warning", "--no-access-log"]
    if server == "granian":  # asginl: Django's ASGI handler has no lifespan protocol
        return [str(Path(sys.executable).parent / "granian"), "--interface", "asginl",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                "--workers-kill-timeout", "10", "--log-level", "warning",
                "settings.asgi:application"]
    raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")
