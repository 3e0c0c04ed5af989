"""Claims on content downloads, shared by every content process through the database.

Under ``on_demand`` one process downloads a missing file and stores it; a process that finds
the file claimed by another waits for the Artifact to appear rather than fetching it too. A
claim lasts :data:`CLAIM_TTL` seconds and its owner renews it while it works, so a process
that died blocks the others for that long at most: its expired claim is taken over.
"""
from __future__ import annotations

import asyncio
import os
import socket
from datetime import timedelta

from asgiref.sync import sync_to_async
from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import ContentFlight, ContentUnit

#: Seconds a claim lasts unless renewed; its owner renews it every third of that.
CLAIM_TTL = 30.0
#: Seconds between two looks at a file another process is downloading.
POLL_INTERVAL = 0.1


def _owner() -> str:
    """This process, as a claim's owner."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim(unit_id: int) -> bool:
    """Claim the download of ``unit_id`` for this process; ``False`` when another process
    holds a live claim."""
    now = timezone.now()
    ContentFlight.objects.filter(unit_id=unit_id, expires__lt=now).delete()
    try:
        with transaction.atomic():
            ContentFlight.objects.create(unit_id=unit_id, owner=_owner(),
                                         expires=now + timedelta(seconds=CLAIM_TTL))
    except IntegrityError:
        return False
    return True


def renew(unit_id: int) -> None:
    ContentFlight.objects.filter(unit_id=unit_id, owner=_owner()).update(
        expires=timezone.now() + timedelta(seconds=CLAIM_TTL))


def release(unit_id: int) -> None:
    ContentFlight.objects.filter(unit_id=unit_id, owner=_owner()).delete()


def _stored(unit_id: int) -> bool:
    return ContentUnit.objects.filter(pk=unit_id, artifact__isnull=False).exists()


async def claim_or_wait(unit_id: int) -> bool:
    """``True`` once this process holds the claim on ``unit_id``; ``False`` once another
    process stored the file (its Artifact is there)."""
    while True:
        if await sync_to_async(claim)(unit_id):
            if not await sync_to_async(_stored)(unit_id):
                return True
            await sync_to_async(release)(unit_id)  # stored by the claim's previous owner
            return False
        if await sync_to_async(_stored)(unit_id):
            return False
        await asyncio.sleep(POLL_INTERVAL)


async def keep_renewed(unit_id: int) -> None:
    """Renew this process's claim on ``unit_id`` until cancelled."""
    while True:
        await asyncio.sleep(CLAIM_TTL / 3)
        await sync_to_async(renew)(unit_id)
