"""The API's renderers: JSON, and DRF's browsable API carrying the project's name.

Every view of the API sets ``renderer_classes = RENDERERS``: the branded page is the template
``pulp_downloads/api.html`` (DRF's own ``rest_framework/api.html`` comes first in template
lookup, its app being listed before this one).
"""
from __future__ import annotations

from rest_framework import renderers


class BrowsableAPIRenderer(renderers.BrowsableAPIRenderer):
    """DRF's browsable API, titled and branded "pulp_downloads API"."""

    template = "pulp_downloads/api.html"


RENDERERS = (renderers.JSONRenderer, BrowsableAPIRenderer)
