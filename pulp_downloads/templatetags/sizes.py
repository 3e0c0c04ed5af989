"""Template filters for byte counts, from the one formatter :mod:`pulp_downloads.sizes`.

``{% load sizes %}`` then ``{{ count|human_size }}`` (``1.36 MB``), ``{{ count|exact_bytes }}``
(``1,357,417 bytes``) or ``{{ count|sized }}``: the human size with the exact count as its
tooltip.
"""
from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

from .. import sizes

register = template.Library()


@register.filter
def human_size(count: int | None) -> str:
    """``1357417`` -> ``1.36 MB``; ``None`` -> ``—``."""
    return sizes.human_size(count)


@register.filter
def exact_bytes(count: int) -> str:
    """``1357417`` -> ``1,357,417 bytes``."""
    return sizes.exact_bytes(count)


@register.filter
def sized(count: int | None) -> SafeString:
    """``<span title="1,357,417 bytes">1.36 MB</span>``; ``—`` for ``None``."""
    if count is None:
        return format_html("{}", sizes.human_size(None))
    return format_html('<span class="size" title="{}">{}</span>', sizes.exact_bytes(count),
                       sizes.human_size(count))
