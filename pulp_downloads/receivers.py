"""Signal receivers of the app (connected from ``AppConfig.ready()``)."""
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Artifact


@receiver(post_delete, sender=Artifact, dispatch_uid="pulp_downloads.artifact_file_cleanup")
def delete_artifact_file(sender, instance: Artifact, **kwargs) -> None:
    """Remove an Artifact's file once its row is gone (after the transaction commits)."""
    from django.db import transaction

    name = instance.file.name
    storage = instance.file.storage

    def remove() -> None:
        if not Artifact.objects.filter(sha256=instance.sha256).exists():
            storage.delete(name)

    transaction.on_commit(remove)
