"""Admin of Remotes: sections for TLS, proxy, mirrors and limits, a "Sync now" button and
the latest syncs on the Remote's page, and a sync action on the list. The add page shows
only what applies to a new remote (no "clear" boxes, no syncs, no record)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from ..models import Remote, SyncTask
from ..tasks import SyncAlreadyActive, enqueue_repair, enqueue_sync
from . import display
from .forms import CLEAR_FIELDS, RemoteAdminForm

#: How many of a Remote's syncs its page lists.
HISTORY_LENGTH = 10


def message_task_queued(model_admin, request, task: SyncTask) -> None:
    """Tell the user the task is queued, with a link to its page."""
    url = reverse("admin:pulp_downloads_synctask_change", args=[task.pk])
    model_admin.message_user(
        request,
        format_html('{} of {} queued: <a href="{}">task {}</a> ({}).',
                    task.get_kind_display(), task.target, url, task.pk,
                    task.get_state_display()),
        messages.SUCCESS,
    )


def task_link(task: SyncTask | None) -> str:
    """A link to the task's page, labelled with its state badge."""
    if task is None:
        return "—"
    url = reverse("admin:pulp_downloads_synctask_change", args=[task.pk])
    return format_html('<a href="{}">{}</a>', url, display.badge(task))


@admin.register(Remote)
class RemoteAdmin(admin.ModelAdmin):
    form = RemoteAdminForm
    change_form_template = "admin/pulp_downloads/remote/change_form.html"
    list_display = ("name", "url", "policy", "latest_task", "updated_at")
    list_filter = ("policy",)
    search_fields = ("name", "url")
    readonly_fields = ("created_at", "updated_at", "latest_task", "sync_history")
    actions = ["sync_selected", "repair_selected"]
    fieldsets = (
        (None, {"fields": ("name", "url", "policy", "verify_before_serve")}),
        ("Tasks", {"fields": ("sync_history",)}),
        ("TLS", {"classes": ("collapse",),
                 "fields": ("tls_validation", "ca_cert", "client_cert", "client_key",
                            "clear_client_key")}),
        ("Authentication", {"classes": ("collapse",),
                            "fields": ("username", "password", "clear_password",
                                       "bearer_token", "clear_bearer_token")}),
        ("Proxy", {"classes": ("collapse",),
                   "fields": ("proxy_url", "proxy_username", "proxy_password",
                              "clear_proxy_password")}),
        ("Mirrors", {"classes": ("collapse",), "fields": ("mirrors", "mirrorlist_url")}),
        ("Limits", {"classes": ("collapse",),
                    "fields": ("download_concurrency", "max_retries", "rate_limit",
                               "max_bandwidth", "total_timeout", "connect_timeout", "sock_connect_timeout",
                               "sock_read_timeout")}),
        ("Request headers", {"classes": ("collapse",), "fields": ("headers",)}),
        ("Record", {"classes": ("collapse",), "fields": ("created_at", "updated_at")}),
    )

    class Media:
        css = display.ADMIN_CSS

    #: Sections of the change page only: a new remote has no syncs and no record yet.
    CHANGE_ONLY_SECTIONS = ("Tasks", "Record")

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return self.fieldsets
        # A new remote: nothing to keep or clear, nothing synced, nothing recorded.
        return [(name, {**options, "fields": tuple(field for field in options["fields"]
                                                   if field not in CLEAR_FIELDS)})
                for name, options in self.fieldsets if name not in self.CHANGE_ONLY_SECTIONS]

    @admin.display(description="created", ordering="created")
    def created_at(self, obj: Remote) -> str:
        return display.short_date(obj.created)

    @admin.display(description="updated", ordering="updated")
    def updated_at(self, obj: Remote) -> str:
        return display.short_date(obj.updated)

    def save_model(self, request, obj: Remote, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.dropped_secrets:
            names = ", ".join(f"headers ({', '.join(obj.dropped_headers)})" if name == "headers"
                              else name.replace("_", " ") for name in obj.dropped_secrets)
            self.message_user(
                request,
                f"{obj.name}: cleared {names}, which would now reach a server it was not "
                "given for (the URL, mirrors, mirror list or proxy changed). Enter it again if "
                "that is intended.",
                messages.WARNING,
            )

    @admin.display(description="latest sync")
    def latest_task(self, obj: Remote) -> str:
        if obj.pk is None:
            return "—"
        return task_link(obj.sync_tasks.filter(kind=SyncTask.Kind.SYNC).order_by("-created")
                         .first())

    @admin.display(description="latest tasks")
    def sync_history(self, obj: Remote) -> str:
        tasks = list(obj.sync_tasks.order_by("-created")[:HISTORY_LENGTH]) if obj.pk else []
        rows = [{"task": task, "link": task_link(task), "progress": display.one_line(task),
                 "created": display.short_date(task.created),
                 "duration": display.run_time(task)} for task in tasks]
        return render_to_string("admin/pulp_downloads/remote/history.html", {
            "rows": rows,
            "all_url": reverse("admin:pulp_downloads_synctask_changelist")
                       + f"?remote__id__exact={obj.pk}",
        })

    def has_sync_permission(self, request) -> bool:
        """The sync action needs ``pulp_downloads.sync_remote``."""
        return request.user.has_perm("pulp_downloads.sync_remote")

    @admin.action(description="Sync selected remotes", permissions=["sync"])
    def sync_selected(self, request, queryset) -> None:
        for remote in queryset:
            self._enqueue(request, remote)

    def has_repair_permission(self, request) -> bool:
        """The repair action needs ``pulp_downloads.repair_artifacts``."""
        return request.user.has_perm("pulp_downloads.repair_artifacts")

    @admin.action(description="Repair stored files of selected remotes", permissions=["repair"])
    def repair_selected(self, request, queryset) -> None:
        for remote in queryset:
            self._enqueue(request, remote, repair=True)

    def _enqueue(self, request, remote: Remote, repair: bool = False) -> SyncTask | None:
        try:
            task = (enqueue_repair(remote, verify_digests=True) if repair
                    else enqueue_sync(remote))
        except SyncAlreadyActive as exc:
            self.message_user(request, f"{remote.name}: {exc}", messages.WARNING)
            return None
        message_task_queued(self, request, task)
        return task

    def get_urls(self):
        sync = self.admin_site.admin_view(self.sync_view)
        return [path("<int:pk>/sync/", sync, name="pulp_downloads_remote_sync"),
                *super().get_urls()]

    def sync_view(self, request, pk: int):
        """POST: queue a sync of this remote (the "Sync now" button) and open its task."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        remote = get_object_or_404(Remote, pk=pk)
        if not (self.has_view_permission(request, remote) and self.has_sync_permission(request)):
            raise PermissionDenied
        task = self._enqueue(request, remote)
        if task is None:
            return HttpResponseRedirect(reverse("admin:pulp_downloads_remote_change",
                                                args=[pk]))
        return HttpResponseRedirect(reverse("admin:pulp_downloads_synctask_change",
                                            args=[task.pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        context["show_sync_now"] = obj is not None and self.has_sync_permission(request)
        return super().render_change_form(request, context, add, change, form_url, obj)

