"""App configuration."""
from django.apps import AppConfig


class PulpDownloadsConfig(AppConfig):
    """Installs the download library's site defaults and the app's signal receivers once
    the app registry is ready."""

    name = "pulp_downloads"
    verbose_name = "Pulp downloads"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from . import checks  # noqa: F401 - registers the system checks
        from .dbfiles import on_connection_created
        from .download import install_defaults
        from .signals import connect_receivers

        install_defaults(site_factory_defaults)  # the library itself knows nothing of Django
        connect_receivers()
        post_migrate.connect(_ensure_role_groups, sender=self)
        connection_created.connect(on_connection_created,
                                   dispatch_uid="pulp_downloads.private_sqlite_files")
        _forget_stored_files_when_remotes_change()
        _hide_queue_results_from_admin()


def site_factory_defaults():
    """What every DownloaderFactory of this site uses unless told otherwise: the site's
    settings and limits (``settings.PULP_DOWNLOADS``, read again for each factory), the
    download signals, and the ArtifactStore behind ``build(save_artifact=True)``."""
    from .conf import app_settings, library_settings
    from .download import FactoryDefaults
    from .signals import SignalEvents
    from .storage import ArtifactStore

    conf = app_settings()
    return FactoryDefaults(
        settings=library_settings(),
        download_concurrency=conf.default_download_concurrency,
        max_retries=conf.default_max_retries,
        max_download_concurrency=conf.max_download_concurrency,
        events=SignalEvents,
        store=ArtifactStore,
    )


def _forget_stored_files_when_remotes_change() -> None:
    """The content app's cache of stored paths is dropped when a Remote is saved or deleted in
    this process (other processes forget within PULP_DOWNLOADS["CONTENT_CACHE_TTL"])."""
    from django.db.models.signals import post_delete, post_save

    from .content.asgi import stored_files
    from .models import Remote

    def forget(sender, **kwargs) -> None:
        stored_files.clear()

    post_save.connect(forget, sender=Remote, weak=False,
                      dispatch_uid="pulp_downloads.forget_stored_files.save")
    post_delete.connect(forget, sender=Remote, weak=False,
                        dispatch_uid="pulp_downloads.forget_stored_files.delete")


def _hide_queue_results_from_admin() -> None:
    """The task queue's own result list (django_tasks_db) is not shown in the admin: it
    records whether the task function returned, not how the sync ended, and would disagree
    with the sync tasks, which are the operator's view."""
    from django.contrib import admin
    from django_tasks_db.models import DBTaskResult

    if admin.site.is_registered(DBTaskResult):
        admin.site.unregister(DBTaskResult)


def _ensure_role_groups(sender, **kwargs) -> None:
    """After ``migrate`` (or a test database flush): the role groups exist with their
    permissions. Runs after Django created the app's permissions (same signal, earlier
    receiver)."""
    from django.contrib.auth.models import Group, Permission

    from .roles import ensure_role_groups

    ensure_role_groups(Group, Permission)
