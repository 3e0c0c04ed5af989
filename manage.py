#!/usr/bin/env python
"""Django's command-line utility for pulp_downloads.

A configuration error (``ImproperlyConfigured``: a setting missing or malformed, in the
environment or the ``.env`` file) is one line on stderr and exit status 1, not a traceback;
``--traceback`` shows the traceback as well.
"""
import os
import sys
import traceback


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - loads the settings: their errors come first
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as error:
        if "--traceback" in sys.argv:
            traceback.print_exc()
        sys.exit(f"Error: {error}")


if __name__ == "__main__":
    main()
