"""The OpenAPI schema states the error answers every operation can give, in their one shape
(:data:`pulp_downloads.api.errors.ERROR_SCHEMA`)."""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from .errors import ERROR_SCHEMA


def _answer(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": ERROR_SCHEMA}}}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema plus 400 (bad input), 401/403 (authentication and
    permissions) and 404 (unknown object) where they apply; 409s are declared by the views.
    Every 4xx answer has the one error shape."""

    def _get_response_bodies(self, direction: str = "response"):
        responses = super()._get_response_bodies(direction)
        method = self.method.upper()
        responses.setdefault("401", _answer("Not authenticated."))
        responses.setdefault("403", _answer("Permission denied."))
        if "{" in self.path:
            responses.setdefault("404", _answer("No such object."))
        if method in ("POST", "PUT", "PATCH") or self._is_list_view():
            responses.setdefault("400", _answer("Invalid input or query parameters: "
                                                "`detail`, and each field with its messages."))
        for status, response in responses.items():
            if str(status).startswith("4") and not response.get("content"):
                response["content"] = _answer("")["content"]
        return responses
