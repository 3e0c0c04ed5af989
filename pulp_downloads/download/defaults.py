"""The download library's defaults, each in one place (the concurrency and retry rule is
in :mod:`.limits`)."""
from __future__ import annotations

#: Seconds to open a TCP/TLS connection, and without receiving a byte, unless a Remote says.
DEFAULT_SOCK_CONNECT_TIMEOUT = 30.0
DEFAULT_SOCK_READ_TIMEOUT = 60.0
#: The digests computed for every download unless a site chooses others.
DEFAULT_CHECKSUMS: tuple[str, ...] = ("sha224", "sha256", "sha384", "sha512")
#: Largest block of bytes read, hashed and written at once.
BLOCK_SIZE = 1 << 20
