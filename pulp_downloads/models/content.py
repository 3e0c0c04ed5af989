"""ContentUnit: a file a Remote lists, and the Artifact holding it once downloaded."""
from __future__ import annotations

from collections.abc import Iterable

from django.db import connections, models, router
from django.utils import timezone

from .bulk import insert_rows


class ContentUnit(models.Model):
    """One ``PULP_MANIFEST`` entry of a Remote.

    ``artifact`` stays empty until the file has been downloaded and validated (for instance
    under the ``on_demand`` policy, until a client first asks for it).
    """

    remote = models.ForeignKey("Remote", on_delete=models.CASCADE, related_name="content_units")
    relative_path = models.CharField(max_length=1024)
    sha256 = models.CharField(max_length=64, db_index=True)
    size = models.BigIntegerField()
    artifact = models.ForeignKey(
        "Artifact", null=True, blank=True, on_delete=models.SET_NULL, related_name="content_units"
    )
    last_error = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["remote_id", "relative_path"]
        verbose_name = "content unit"
        verbose_name_plural = "content units"
        constraints = [
            models.UniqueConstraint(
                fields=["remote", "relative_path"], name="unique_content_path_per_remote"
            )
        ]

    def __str__(self) -> str:
        return self.relative_path

    @classmethod
    def insert_new(cls, remote_id: int, listed: Iterable[tuple[str, str, int]]) -> None:
        """Insert units ``(relative_path, sha256, size)`` of a remote that has none at these
        paths yet, with multi-row INSERTs (a sync lists thousands of files; the model by
        model path costs several times more)."""
        connection = connections[router.db_for_write(cls)]
        now = cls._meta.get_field("created").get_db_prep_value(timezone.now(), connection)
        insert_rows(
            connection, cls._meta.db_table,
            ["remote_id", "relative_path", "sha256", "size", "last_error", "created", "updated"],
            [(remote_id, path, sha256, size, "", now, now) for path, sha256, size in listed],
        )


class ContentFlight(models.Model):
    """A claim, shared by every content process, that one process is downloading a
    ContentUnit to store it (``on_demand``): others wait for its Artifact instead of fetching
    the same file. The owner renews ``expires`` while it works; an expired claim belongs to
    a process that died and may be taken over."""

    unit = models.OneToOneField(ContentUnit, on_delete=models.CASCADE, related_name="flight")
    owner = models.CharField(max_length=255)
    expires = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "content download in flight"
        verbose_name_plural = "content downloads in flight"

    def __str__(self) -> str:
        return f"{self.unit_id} by {self.owner}"
