"""One DownloaderFactory per Remote for the content app, reused across requests."""
from __future__ import annotations

import asyncio

from ..download import DownloaderFactory
from ..models import Remote

_factories: dict[tuple[int, asyncio.AbstractEventLoop], tuple[object, DownloaderFactory]] = {}


async def factory_for(remote: Remote) -> DownloaderFactory:
    """The factory for ``remote`` on the running loop; rebuilt when the Remote changed."""
    key = (remote.pk, asyncio.get_running_loop())
    cached = _factories.get(key)
    if cached is not None and cached[0] == remote.updated:
        return cached[1]
    if cached is not None:
        await cached[1].close()
    factory = DownloaderFactory(remote)
    _factories[key] = (remote.updated, factory)
    return factory
