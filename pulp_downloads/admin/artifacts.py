"""Admin of Artifacts (read-only, with a download link) and content units."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import Artifact, ContentUnit
from ..tasks import SyncAlreadyActive, enqueue_repair
from .remotes import message_task_queued


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ("sha256", "size", "created")
    actions = ["repair_selected"]
    search_fields = tuple(reversed(Artifact.DIGEST_FIELDS))  # strongest first
    readonly_fields = ("file_link", "size", *Artifact.DIGEST_FIELDS, "created")
    fields = readonly_fields

    @admin.display(description="file")
    def file_link(self, obj: Artifact) -> str:
        url = reverse("admin:pulp_downloads_artifact_download", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.file.name)

    def get_urls(self):
        download = self.admin_site.admin_view(self.download_view)
        return [
            path("<int:pk>/download/", download, name="pulp_downloads_artifact_download"),
            *super().get_urls(),
        ]

    def download_view(self, request, pk: int):
        """Serve the Artifact's file to staff allowed to view Artifacts."""
        artifact = get_object_or_404(Artifact, pk=pk)
        if not self.has_view_permission(request, artifact):
            raise PermissionDenied
        return FileResponse(artifact.file.open("rb"), as_attachment=True,
                            filename=artifact.sha256, content_type="application/octet-stream")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_repair_permission(self, request) -> bool:
        """The repair action needs ``pulp_downloads.repair_artifacts``."""
        return request.user.has_perm("pulp_downloads.repair_artifacts")

    @admin.action(description="Repair selected artifacts (verify digests, fetch again)",
                  permissions=["repair"])
    def repair_selected(self, request, queryset) -> None:
        try:
            task = enqueue_repair(None, verify_digests=True,
                                  artifacts=list(queryset.values_list("pk", flat=True)))
        except SyncAlreadyActive as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        message_task_queued(self, request, task)


@admin.register(ContentUnit)
class ContentUnitAdmin(admin.ModelAdmin):
    list_display = ("relative_path", "remote", "size", "artifact")
    list_filter = ("remote",)
    search_fields = ("relative_path", "sha256")
    readonly_fields = ("remote", "relative_path", "sha256", "size", "artifact", "last_error",
                       "created", "updated")

    def has_add_permission(self, request) -> bool:
        return False
