"""WSGI entry point (``settings.wsgi:application``).

A settings error stops the importing process with one line on stderr (see
``settings.environment.ConfigurationError``).
"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
application = get_wsgi_application()
