"""App configuration."""
from django.apps import AppConfig


class PulpDownloadsConfig(AppConfig):
    """Connects the app's signal receivers once the app registry is ready."""

    name = "pulp_downloads"
    verbose_name = "Pulp downloads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from . import checks  # noqa: F401 - registers the system checks
        from .signals import connect_receivers

        connect_receivers()
        post_migrate.connect(_ensure_role_groups, sender=self)


def _ensure_role_groups(sender, **kwargs) -> None:
    """After ``migrate`` (or a test database flush): the role groups exist with their
    permissions. Runs after Django created the app's permissions (same signal, earlier
    receiver)."""
    from django.contrib.auth.models import Group, Permission

    from .roles import ensure_role_groups

    ensure_role_groups(Group, Permission)
