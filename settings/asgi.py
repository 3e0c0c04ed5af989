"""ASGI entry point: ``uvicorn settings.asgi:application``.

With ``DEBUG`` on (or ``SERVE_STATIC=1``, as in the ``.env`` that ``make run`` writes) static
files (admin, API docs) are served by the application itself, as ``runserver`` does; in
production run ``collectstatic`` and let the front web server serve ``STATIC_ROOT``.

A settings error (no ``SECRET_KEY``, a malformed value) stops the server's process with one
line on stderr, ``Error: ...`` (see ``settings.environment.ConfigurationError``).
"""
import os

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
application = get_asgi_application()

if settings.DEBUG or settings.SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    application = ASGIStaticFilesHandler(application)

# Stored content is answered before Django (see pulp_downloads.content.asgi).
from pulp_downloads.content.asgi import ContentApp  # noqa: E402

application = ContentApp(application)
