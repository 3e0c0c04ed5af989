"""Artifact: one stored file, identified by its sha256 and described by its digests."""
from __future__ import annotations

from django.db import models

from pulp_downloads.conf import DIGEST_ALGORITHMS
from pulp_downloads.sizes import human_size


class Artifact(models.Model):
    """A file in storage. Its bytes always agree with its digests and size.

    Artifacts are made by :class:`pulp_downloads.storage.ArtifactStore`, which puts the
    file in place atomically and durably before the row exists, idempotently on sha256.
    """

    file = models.FileField(max_length=255)
    size = models.BigIntegerField()
    md5 = models.CharField(max_length=32, null=True, blank=True, db_index=True)
    sha1 = models.CharField(max_length=40, null=True, blank=True, db_index=True)
    sha224 = models.CharField(max_length=56, null=True, blank=True, db_index=True)
    sha256 = models.CharField(max_length=64, unique=True)
    sha384 = models.CharField(max_length=96, null=True, blank=True, db_index=True)
    sha512 = models.CharField(max_length=128, null=True, blank=True, db_index=True)
    created = models.DateTimeField(auto_now_add=True)

    DIGEST_FIELDS = DIGEST_ALGORITHMS

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "artifact"
        verbose_name_plural = "artifacts"
        permissions = [("repair_artifacts", "Can repair artifacts")]

    def __str__(self) -> str:
        return f"sha256:{self.sha256[:16]}… ({human_size(self.size)})"

    @property
    def digests(self) -> dict[str, str]:
        """The digests this Artifact has, by algorithm name."""
        return {name: getattr(self, name) for name in DIGEST_ALGORITHMS if getattr(self, name)}
