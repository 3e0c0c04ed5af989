"""Admin of sync tasks: a list with state badges and one-line progress, and a task page
whose progress bar follows the running sync, with failures as a table and a Cancel button."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import SyncTask
from . import display


@admin.register(SyncTask)
class SyncTaskAdmin(admin.ModelAdmin):
    list_display = ("created", "kind", "target", "state_badge", "progress_line", "error_line",
                    "finished")
    list_display_links = ("created",)
    list_filter = ("state", "kind", "remote")
    list_select_related = ("remote",)
    actions = ["cancel_selected"]
    change_form_template = "admin/pulp_downloads/synctask/change_form.html"
    readonly_fields = ("progress_panel", "kind", "target", "state_badge", "created", "started",
                       "finished", "duration", "worker", "heartbeat", "error", "summary_table",
                       "failures_table", "id", "backend_task_id")
    fieldsets = (
        (None, {"fields": ("progress_panel",)}),
        ("Task", {"fields": ("kind", "target", "state_badge", "created", "started",
                             "finished", "duration", "error")}),
        ("Result", {"fields": ("summary_table", "failures_table")}),
        ("Worker", {"classes": ("collapse",),
                    "fields": ("worker", "heartbeat", "id", "backend_task_id")}),
    )

    @admin.display(description="of", ordering="remote__name")
    def target(self, obj: SyncTask) -> str:
        return obj.target

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: SyncTask) -> str:
        return display.badge(obj)

    @admin.display(description="progress")
    def progress_line(self, obj: SyncTask) -> str:
        return display.one_line(obj)

    @admin.display(description="error")
    def error_line(self, obj: SyncTask) -> str:
        first = obj.error.strip().splitlines()[0] if obj.error.strip() else ""
        if len(first) > 90:
            first = first[:89] + "…"
        return format_html('<span title="{}">{}</span>', obj.error, first) if first else "—"

    @admin.display(description="progress")
    def progress_panel(self, obj: SyncTask) -> str:
        return render_to_string("admin/pulp_downloads/synctask/progress.html", {
            "task": obj, "progress": display.progress(obj),
            "progress_url": reverse("admin:pulp_downloads_synctask_progress", args=[obj.pk]),
        })

    @admin.display(description="duration")
    def duration(self, obj: SyncTask) -> str:
        return display.run_time(obj)

    @admin.display(description="summary")
    def summary_table(self, obj: SyncTask) -> str:
        return render_to_string("admin/pulp_downloads/synctask/summary.html",
                                {"summary": _summary_rows(obj.summary or {})})

    @admin.display(description="failures")
    def failures_table(self, obj: SyncTask) -> str:
        return render_to_string("admin/pulp_downloads/synctask/failures.html",
                                {"progress": display.progress(obj)})

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_active:
            return False  # cancel it first
        return super().has_delete_permission(request, obj)

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("pulp_downloads.cancel_synctask")

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset.exclude(state__in=SyncTask.ACTIVE_STATES))

    @admin.action(description="Cancel selected syncs", permissions=["cancel"])
    def cancel_selected(self, request, queryset) -> None:
        canceled = [task for task in queryset if task.cancel(by=request.user.get_username())]
        self.message_user(request, f"Canceled {len(canceled)} sync(s).", messages.SUCCESS)

    def get_urls(self):
        cancel = self.admin_site.admin_view(self.cancel_view)
        progress = self.admin_site.admin_view(self.progress_view)
        return [path("<uuid:pk>/cancel/", cancel, name="pulp_downloads_synctask_cancel"),
                path("<uuid:pk>/progress/", progress, name="pulp_downloads_synctask_progress"),
                *super().get_urls()]

    def progress_view(self, request, pk):
        """GET: the task's progress as JSON, polled by its page while it runs."""
        task = get_object_or_404(SyncTask, pk=pk)
        if not self.has_view_permission(request, task):
            raise PermissionDenied
        return JsonResponse(display.progress(task))

    def cancel_view(self, request, pk):
        """POST: cancel one task (the button on its page)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        task = get_object_or_404(SyncTask, pk=pk)
        if task.cancel(by=request.user.get_username()):
            self.message_user(request, f"Canceled the {task.kind} of {task.target}.",
                              messages.SUCCESS)
        else:
            self.message_user(request, f"The sync is {task.get_state_display().lower()}: "
                                       "nothing to cancel.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:pulp_downloads_synctask_change", args=[pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        context["show_cancel"] = (obj is not None and obj.is_active
                                  and self.has_cancel_permission(request))
        return super().render_change_form(request, context, add, change, form_url, obj)


#: Summary keys in the order the page lists them, with their labels; sizes are humanized.
_SUMMARY_LABELS = {
    "listed": "files listed", "already_present": "already stored", "downloaded": "downloaded",
    "restored": "restored (missing from storage)", "bytes_downloaded": "bytes downloaded",
    "failed": "failed",
}


def _summary_rows(summary: dict) -> list[tuple[str, str]]:
    rows = []
    for key in [*_SUMMARY_LABELS, *sorted(set(summary) - set(_SUMMARY_LABELS))]:
        if key not in summary:
            continue
        value = summary[key]
        if key.startswith("bytes") and isinstance(value, int):
            value = display.size(value)
        rows.append((_SUMMARY_LABELS.get(key, key.replace("_", " ")), value))
    return rows
