"""The download library's defaults, each in one place."""
from __future__ import annotations

#: Simultaneous downloads of a Remote that leaves ``download_concurrency`` empty.
DEFAULT_CONCURRENCY = 10
#: Retries of a failed download when a Remote leaves ``max_retries`` empty.
DEFAULT_MAX_RETRIES = 3
#: The most retries a Remote (or the site default) may ask for.
MAX_RETRIES_LIMIT = 100
#: Seconds to open a TCP/TLS connection, and without receiving a byte, unless a Remote says.
DEFAULT_SOCK_CONNECT_TIMEOUT = 30.0
DEFAULT_SOCK_READ_TIMEOUT = 60.0
#: The digests computed for every download unless a site chooses others.
DEFAULT_CHECKSUMS: tuple[str, ...] = ("sha224", "sha256", "sha384", "sha512")
#: Largest block of bytes read, hashed and written at once.
BLOCK_SIZE = 1 << 20
