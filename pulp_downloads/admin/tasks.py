"""Admin of tasks (syncs and repairs): one list with a Kind column and filter, state badges
and one-line progress, and a view-only task page titled by kind ("Sync of X", "Repair of
all remotes") that follows the task without a reload: bar, badges, Started, Finished,
Summary and Failures (see :mod:`.taskpage`), with a Cancel button while it is active."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import SyncTask
from . import display, taskpage

#: The list shows this much of an error's first line (all of it in the tooltip).
ERROR_LINE_CHARS = 60


@admin.register(SyncTask)
class SyncTaskAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "target_link", "state_badge", "progress_line",
                    "finished_at")
    list_display_links = ("created_at",)
    list_filter = ("kind", "state", "remote")
    list_select_related = ("remote",)
    actions = ["cancel_selected"]
    change_form_template = "admin/pulp_downloads/synctask/change_form.html"
    readonly_fields = ("progress_panel", "kind", "target_link", "live_state", "created_at",
                       "live_started", "live_finished", "live_duration", "worker",
                       "heartbeat_at", "live_error", "summary_table", "failures_table", "id",
                       "backend_task_id")
    fieldsets = (
        (None, {"fields": ("progress_panel",)}),
        ("Task", {"fields": ("kind", "target_link", "live_state", "created_at",
                             "live_started", "live_finished", "live_duration",
                             "live_error")}),
        ("Result", {"fields": ("summary_table", "failures_table")}),
        ("Worker", {"classes": ("collapse",),
                    "fields": ("worker", "heartbeat_at", "id", "backend_task_id")}),
    )

    class Media:
        css = display.ADMIN_CSS

    @admin.display(description="created", ordering="created")
    def created_at(self, obj: SyncTask) -> str:
        return display.short_date(obj.created)

    @admin.display(description="of", ordering="remote__name")
    def target_link(self, obj: SyncTask) -> str:
        return display.target_link(obj)

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj: SyncTask) -> str:
        return display.badge(obj)

    @admin.display(description="progress")
    def progress_line(self, obj: SyncTask) -> str:
        """The one-line progress, and under it the error's first line (all of it in the
        tooltip): the list keeps few columns, to fit a 1280 px window."""
        first = obj.error.strip().splitlines()[0] if obj.error.strip() else ""
        if not first:
            return display.one_line(obj)
        if len(first) > ERROR_LINE_CHARS:
            first = first[:ERROR_LINE_CHARS - 1] + "…"
        return format_html('{}<div class="task-error-line" title="{}">{}</div>',
                           display.one_line(obj), obj.error, first)

    @admin.display(description="finished", ordering="finished")
    def finished_at(self, obj: SyncTask) -> str:
        return display.short_date(obj.finished)

    @admin.display(description="heartbeat")
    def heartbeat_at(self, obj: SyncTask) -> str:
        return display.short_date(obj.heartbeat)

    # The task page's parts that follow the task (see taskpage.live).
    @admin.display(description="state")
    def live_state(self, obj: SyncTask) -> str:
        return taskpage.live(obj, "badge")

    @admin.display(description="started")
    def live_started(self, obj: SyncTask) -> str:
        return taskpage.live(obj, "started")

    @admin.display(description="finished")
    def live_finished(self, obj: SyncTask) -> str:
        return taskpage.live(obj, "finished")

    @admin.display(description="duration")
    def live_duration(self, obj: SyncTask) -> str:
        return taskpage.live(obj, "duration")

    @admin.display(description="error")
    def live_error(self, obj: SyncTask) -> str:
        return taskpage.live(obj, "error")

    @admin.display(description="progress")
    def progress_panel(self, obj: SyncTask) -> str:
        return render_to_string("admin/pulp_downloads/synctask/progress.html", {
            "task": obj, "progress": taskpage.bar(obj),
            "progress_url": reverse("admin:pulp_downloads_synctask_progress", args=[obj.pk]),
        })

    @admin.display(description="summary")
    def summary_table(self, obj: SyncTask) -> str:
        return taskpage.live(obj, "summary")

    @admin.display(description="failures")
    def failures_table(self, obj: SyncTask) -> str:
        return taskpage.live(obj, "failures")

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

    @admin.action(description="Cancel selected tasks", permissions=["cancel"])
    def cancel_selected(self, request, queryset) -> None:
        canceled = [task for task in queryset if task.cancel(by=request.user.get_username())]
        self.message_user(request, f"Canceled {len(canceled)} task(s).", messages.SUCCESS)

    def get_urls(self):
        cancel = self.admin_site.admin_view(self.cancel_view)
        progress = self.admin_site.admin_view(self.progress_view)
        return [path("<uuid:pk>/cancel/", cancel, name="pulp_downloads_synctask_cancel"),
                path("<uuid:pk>/progress/", progress, name="pulp_downloads_synctask_progress"),
                *super().get_urls()]

    def progress_view(self, request, pk):
        """GET: the task's progress and live parts as JSON, polled by its page."""
        task = get_object_or_404(SyncTask.objects.select_related("remote"), pk=pk)
        if not self.has_view_permission(request, task):
            raise PermissionDenied
        return JsonResponse(taskpage.progress(task))

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
            self.message_user(request, f"The {task.kind} is {task.outcome.lower()}: "
                                       "nothing to cancel.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:pulp_downloads_synctask_change", args=[pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        if obj is not None:
            context.update(
                title=display.title(obj), subtitle=None, heading=display.heading(obj),
                badge=display.badge(obj),
                cancel_label=f"Cancel {obj.get_kind_display().lower()}",
                show_cancel=obj.is_active and self.has_cancel_permission(request))
        return super().render_change_form(request, context, add, change, form_url, obj)
