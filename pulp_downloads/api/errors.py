"""The one shape of every API error answer, and the JSON 404/500 of paths under ``/api/``.

Every error answer of the API is a JSON object with ``detail``, one sentence saying what went
wrong. Invalid input (``400``) also names each offending field with its list of messages
(``non_field_errors`` for the request as a whole); a ``409`` about a busy remote adds the
``task`` in the way. For example::

    {"detail": "Invalid remote: No remote named 'nope'.", "remote": ["No remote named 'nope'."]}
    {"detail": "Not found."}

:data:`ERROR_SCHEMA` is that shape in OpenAPI (every 4xx of the schema uses it), and
``docs/rest-api.md`` documents it.
"""
from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views import defaults
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"
NON_FIELD = "non_field_errors"
ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail`: what went wrong, in one sentence. Invalid input also names "
                   "each field (`non_field_errors`: the request as a whole) with its "
                   "messages.",
    "properties": {
        "detail": {"type": "string"},
        "task": {"type": "string", "description": "409: the task already waiting or running."},
    },
    "required": ["detail"],
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


def exception_handler(exc, context):
    """DRF's answer to ``exc`` in the one error shape (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``)."""
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(response.data)
    return response


def error_body(data) -> dict:
    """DRF error data (``{"detail": ...}``, ``{field: [messages]}`` with nested fields, or a
    bare list) as ``{"detail": sentence, field: [messages], ...}``."""
    if isinstance(data, dict) and set(data) == {"detail"} and isinstance(data["detail"], str):
        return {"detail": str(data["detail"])}
    fields: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for name, errors in data.items():
            fields[str(name)] = _messages(errors)
    else:
        fields[NON_FIELD] = _messages(data)
    return {"detail": _summary(fields), **fields}


def _messages(errors, prefix: str = "") -> list[str]:
    """Nested errors (a dict by key or index, lists of lists) as flat strings, each prefixed
    with where it applies (``"X-Header: Not a valid string."``)."""
    if isinstance(errors, dict):
        return [message for key, value in errors.items()
                for message in _messages(value, f"{prefix}{key}: ")]
    if isinstance(errors, (list, tuple)):
        return [message for value in errors for message in _messages(value, prefix)]
    return [f"{prefix}{errors}"]


def _summary(fields: dict[str, list[str]]) -> str:
    if list(fields) == [NON_FIELD] and fields[NON_FIELD]:
        return fields[NON_FIELD][0]
    if len(fields) == 1:
        (name, messages), = fields.items()
        if len(messages) == 1:
            return f"Invalid {name}: {messages[0]}"
    return f"Invalid input: {', '.join(name for name in fields)} (see each field)."


def not_found(request: HttpRequest, exception=None):
    """``handler404``: a JSON 404 under ``/api/`` (unknown paths, ids that are not ids),
    Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest):
    """``handler500``: a JSON 500 under ``/api/``, Django's page elsewhere."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
