"""Byte counts for people: the one formatter of the admin, the command line and listings.

Decimal (SI) multiples, as tqdm's byte bars with ``unit_divisor=1000`` and as package
tools print them, three significant digits: ``1357417`` -> ``1.36 MB``. The exact count goes
in a tooltip or a detail line (:func:`exact_bytes`).
"""
from __future__ import annotations

__all__ = ["human_size", "exact_bytes"]

_UNITS = ("kB", "MB", "GB", "TB", "PB", "EB")


def human_size(count: int | None) -> str:
    """``0`` -> ``0 bytes``; ``999`` -> ``999 bytes``; ``1357417`` -> ``1.36 MB``.

    ``None`` (a size not known yet) is ``—``. Negative counts are refused: no size is below
    zero, so one is a bug upstream of the caller.
    """
    if count is None:
        return "—"
    if count < 0:
        raise ValueError(f"a size cannot be negative: {count}")
    if count < 1000:
        return "1 byte" if count == 1 else f"{count} bytes"
    value = float(count)
    for unit in _UNITS:
        value /= 1000
        if value < 999.5 or unit == _UNITS[-1]:
            break
    if value >= 99.95:
        text = f"{value:.0f}"
    elif value >= 9.995:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}"


def exact_bytes(count: int) -> str:
    """``1357417`` -> ``1,357,417 bytes``: the exact count behind :func:`human_size`."""
    return "1 byte" if count == 1 else f"{count:,} bytes"
