"""The one shape of every API error answer, and the JSON 404/500 of paths under ``/api/``.

Every error answer of the API is a JSON object of one of two kinds, told apart by ``detail``:

- an error about the request as a whole (authentication, permission, an unknown object, a
  body that is not JSON, a conflict): ``{"detail": "one sentence"}``, where a ``409`` about a
  busy remote adds the ``task`` in the way;
- invalid input (``400``): each offending field with its list of messages, strings only
  (``non_field_errors`` for the body as a whole; a nested field's messages start with their
  key, ``"X-Header: ..."``).

For example::

    {"detail": "Not found."}
    {"remote": ["No remote named 'nope'."]}

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
    "description": "`detail`: what went wrong with the request as a whole, in one sentence; "
                   "or, for invalid input, each field (`non_field_errors`: the body as a "
                   "whole) with its messages.",
    "properties": {
        "detail": {"type": "string"},
        "task": {"type": "string", "description": "409: the task already waiting or running."},
    },
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
    "minProperties": 1,
}


def exception_handler(exc, context):
    """DRF's answer to ``exc`` in the one error shape (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``)."""
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(response.data)
    return response


def error_body(data) -> dict:
    """DRF error data (``{"detail": ...}``, ``{field: [messages]}`` with nested fields, or a
    bare list) in the one shape: ``{"detail": sentence}`` or ``{field: [messages], ...}``."""
    if isinstance(data, dict):
        return {str(name): str(errors) if name == "detail" and isinstance(errors, str)
                else _messages(errors) for name, errors in data.items()}
    return {NON_FIELD: _messages(data)}


def _messages(errors, prefix: str = "") -> list[str]:
    """Nested errors (a dict by key or index, lists of lists) as flat strings, each prefixed
    with where it applies (``"X-Header: Not a valid string."``)."""
    if isinstance(errors, dict):
        return [message for key, value in errors.items()
                for message in _messages(value, f"{prefix}{key}: ")]
    if isinstance(errors, (list, tuple)):
        return [message for value in errors for message in _messages(value, prefix)]
    return [f"{prefix}{errors}"]


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
