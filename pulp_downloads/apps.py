"""App configuration."""
from django.apps import AppConfig


class PulpDownloadsConfig(AppConfig):
    """Connects the app's signal receivers once the app registry is ready."""

    name = "pulp_downloads"
    verbose_name = "Pulp downloads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from .signals import connect_receivers

        connect_receivers()
