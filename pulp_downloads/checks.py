"""System checks (``manage.py check``, and every ``runserver``/``migrate``)."""
from __future__ import annotations

from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured


@register()
def check_secret_keys(app_configs=None, **kwargs) -> list[Error]:
    """``PULP_DOWNLOADS_DB_KEY`` holds valid Fernet keys."""
    from .models.fields import secret_cipher

    try:
        secret_cipher()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="pulp_downloads.E001",
                      hint="Fix PULP_DOWNLOADS_DB_KEY: comma-separated Fernet keys, the first "
                           "one encrypts.")]
    return []


@register()
def check_content_origin(app_configs=None, **kwargs) -> list[Error]:
    """``PULP_DOWNLOADS["CONTENT_ORIGIN"]`` is empty or an ``http(s)://host[:port]`` origin."""
    from django.conf import settings

    from .content.security import content_origin_host

    try:
        content_origin_host((getattr(settings, "PULP_DOWNLOADS", None) or {})
                            .get("CONTENT_ORIGIN") or "")
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="pulp_downloads.E002")]
    return []
