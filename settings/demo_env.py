"""Write the demo's settings file (``.env``) once: what ``make env`` (and so ``make run``) runs.

    python3 settings/demo_env.py PATH [--key-from FILE]

The file holds what the demo needs with ``DEBUG`` off, each line with a comment saying what
it is for: a ``SECRET_KEY`` generated with :mod:`secrets` (or the one in ``--key-from``, the
``var/secret-key`` an older checkout's ``make run`` made, so sessions and stored secrets
survive the move), ``SERVE_STATIC=1`` and the outbound policy's exception for the bundled
sample upstream on loopback. It is created with mode 0600 and never overwritten: an
existing file is left as it is. Standard library only, so it runs before ``.venv`` exists.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

TEMPLATE = """\
# Settings of this checkout, read by manage.py, uvicorn and granian (settings.asgi) at start.
# Written once by `make run`; edit it freely, it is never overwritten. A variable set in the
# environment wins over this file. Every variable is described in docs/configuration.md.
# Keep this file private (mode 0600): it holds the secret key.

# Django signs sessions and password-reset links with it and, without PULP_DOWNLOADS_DB_KEY,
# encrypts the Remotes' secrets in the database with a key derived from it. Keep it secret,
# and keep it: a new one logs everyone out and makes stored Remote secrets unreadable.
SECRET_KEY={secret_key}

# The demo has no front web server: the application serves the admin's and the API docs'
# static files itself. In production, run `manage.py collectstatic` and let the web server
# serve STATIC_ROOT instead.
SERVE_STATIC=1

# The outbound address policy refuses loopback addresses (docs/operations.md); the sample
# upstream of `make run` listens on 127.0.0.1, so loopback is allowed here. Remove this line
# where remotes must not reach this machine's own services.
PULP_DOWNLOADS_ALLOWED_NETWORKS=127.0.0.0/8
"""


def demo_env(secret_key: str) -> str:
    """The text of the demo's settings file with ``secret_key``."""
    if not secret_key or any(char.isspace() or char in "\"'#$\\" for char in secret_key):
        raise ValueError("the secret key must be one word without quotes, #, $ or \\")
    return TEMPLATE.format(secret_key=secret_key)


def write_demo_env(path: Path, key_from: Path | None = None) -> bool:
    """Create ``path`` (mode 0600) with the demo's settings unless it exists; the key is the
    one in ``key_from`` when that file exists and holds one, else a new one. Returns whether
    the file was written."""
    key = ""
    if key_from is not None and key_from.is_file():
        key = key_from.read_text().strip()
    text = demo_env(key or secrets.token_urlsafe(50))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(text)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", type=Path, help="the file to write (e.g. .env)")
    parser.add_argument("--key-from", type=Path, metavar="FILE",
                        help="take SECRET_KEY from this file when it exists")
    args = parser.parse_args(argv)
    try:
        written = write_demo_env(args.path, args.key_from)
    except ValueError as error:
        sys.exit(f"Error: {args.key_from}: {error}")
    if written:
        carried = args.key_from is not None and args.key_from.is_file()
        print(f"wrote the demo's settings to {args.path}"
              + (f" (SECRET_KEY from {args.key_from})" if carried else ""))
    else:
        print(f"{args.path} exists: left as it is")
    return 0


if __name__ == "__main__":
    sys.exit(main())
