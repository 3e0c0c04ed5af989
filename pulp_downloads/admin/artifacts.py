"""Admin of Artifacts and content units: view-only pages (no add, no change; the repair
action and delete stay), human sizes with the exact count, digests that wrap."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import Artifact, ContentUnit
from ..tasks import SyncAlreadyActive, enqueue_repair
from . import display
from .remotes import message_task_queued


class ViewOnly:
    """Rows made by syncs, never typed in: shown, not added or changed."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Artifact)
class ArtifactAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ("digest", "size_column", "created_at")
    list_display_links = ("digest",)
    actions = ["repair_selected"]
    search_fields = tuple(reversed(Artifact.DIGEST_FIELDS))  # strongest first
    readonly_fields = ("file_link", "size_in_full", *Artifact.DIGEST_FIELDS, "created_at")
    fields = readonly_fields

    class Media:
        css = display.ADMIN_CSS

    @admin.display(description="sha256", ordering="sha256")
    def digest(self, obj: Artifact) -> str:
        return format_html('<span class="digest">{}</span>', obj.sha256)

    @admin.display(description="size", ordering="size")
    def size_column(self, obj: Artifact) -> str:
        return display.sized(obj.size)

    @admin.display(description="size")
    def size_in_full(self, obj: Artifact) -> str:
        return display.size_in_full(obj.size)

    @admin.display(description="created", ordering="created")
    def created_at(self, obj: Artifact) -> str:
        return display.short_date(obj.created)

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

    def has_repair_permission(self, request) -> bool:
        """The repair action needs ``pulp_downloads.repair_artifacts``."""
        return request.user.has_perm("pulp_downloads.repair_artifacts")

    @admin.action(description="Repair selected artifacts", permissions=["repair"])
    def repair_selected(self, request, queryset) -> None:
        try:
            task = enqueue_repair(None, verify_digests=True,
                                  artifacts=list(queryset.values_list("pk", flat=True)))
        except SyncAlreadyActive as exc:
            self.message_user(request, str(exc), messages.WARNING)
            return
        message_task_queued(self, request, task)


@admin.register(ContentUnit)
class ContentUnitAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ("relative_path", "remote", "size_column", "artifact_link")
    list_filter = ("remote",)
    list_select_related = ("remote",)
    search_fields = ("relative_path", "sha256")
    readonly_fields = ("remote_link", "relative_path", "sha256", "size_in_full",
                       "artifact_link", "last_error", "created_at", "updated_at")
    fields = readonly_fields

    class Media:
        css = display.ADMIN_CSS

    @admin.display(description="size", ordering="size")
    def size_column(self, obj: ContentUnit) -> str:
        return display.sized(obj.size)

    @admin.display(description="size")
    def size_in_full(self, obj: ContentUnit) -> str:
        return display.size_in_full(obj.size)

    @admin.display(description="remote")
    def remote_link(self, obj: ContentUnit) -> str:
        url = reverse("admin:pulp_downloads_remote_change", args=[obj.remote_id])
        return format_html('<a href="{}">{}</a>', url, obj.remote)

    @admin.display(description="artifact", ordering="artifact")
    def artifact_link(self, obj: ContentUnit) -> str:
        """The stored file's page, by the start of its sha256; ``—`` until downloaded."""
        if obj.artifact_id is None:
            return "—"
        url = reverse("admin:pulp_downloads_artifact_change", args=[obj.artifact_id])
        return format_html('<a href="{}" class="digest" title="sha256:{}">{}…</a>', url,
                           obj.sha256, obj.sha256[:12])

    @admin.display(description="created", ordering="created")
    def created_at(self, obj: ContentUnit) -> str:
        return display.short_date(obj.created)

    @admin.display(description="updated", ordering="updated")
    def updated_at(self, obj: ContentUnit) -> str:
        return display.short_date(obj.updated)
