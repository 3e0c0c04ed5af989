"""Keeping the cyclic garbage collector off the heap that a long operation finds.

A worker that has loaded Django holds some 80,000 objects tracked by the garbage collector.
A sync allocates enough new objects to trigger a full collection now and then, and each one
walks all of them while holding the GIL: 26-53 ms during which neither the event loop nor
the storing thread can run (measured in syncs of 2,000 small files). Inside
:func:`frozen_heap`, the objects that existed when it was entered are left out of every
collection (``gc.freeze()``); new objects are collected as usual.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_active = 0


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Run the block with the objects that exist now out of the collector's sight.

    They are handed back (``gc.unfreeze()``) when the last ``frozen_heap`` block of the
    process ends, so blocks may overlap across threads; garbage among them is collected
    then. Nothing is freed later than that, and nothing is leaked.
    """
    global _active
    with _lock:
        _active += 1
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.unfreeze()
