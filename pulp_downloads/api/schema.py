"""The OpenAPI schema states the error answers every operation can give."""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

_ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
_VALIDATION_ERROR = {
    "type": "object",
    "description": "Field name (or non_field_errors) -> messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


def _answer(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema plus 400 (bad input), 401/403 (authentication and
    permissions) and 404 (unknown object) where they apply; 409s are declared by the views."""

    def _get_response_bodies(self, direction: str = "response"):
        responses = super()._get_response_bodies(direction)
        method = self.method.upper()
        responses.setdefault("401", _answer("Not authenticated.", _ERROR))
        responses.setdefault("403", _answer("Permission denied.", _ERROR))
        if "{" in self.path:
            responses.setdefault("404", _answer("No such object.", _ERROR))
        if method in ("POST", "PUT", "PATCH") or self._is_list_view():
            responses.setdefault("400", _answer("Invalid input or query parameters.",
                                                _VALIDATION_ERROR))
        return responses
