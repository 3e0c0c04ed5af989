"""Django admin for Remotes and Artifacts."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from .models import SECRET_FIELDS, Artifact, ContentUnit, Remote, SyncTask
from .tasks import SyncAlreadyActive, enqueue_sync


class RemoteAdminForm(forms.ModelForm):
    """Secrets are write-only: typed into password inputs, never rendered back.

    Leaving a secret empty keeps the stored value; tick "clear" to remove it.
    """

    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current password.",
    )
    proxy_password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current proxy password.",
    )
    client_key = forms.CharField(
        required=False, strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off"}),
        help_text="PEM private key. Never shown back; leave empty to keep the current key.",
    )
    bearer_token = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False),
        help_text="Static token sent as 'Authorization: Bearer ...'. Leave empty to keep the "
                  "current token.",
    )
    clear_password = forms.BooleanField(required=False, label="Clear password")
    clear_bearer_token = forms.BooleanField(required=False, label="Clear bearer token")
    clear_proxy_password = forms.BooleanField(required=False, label="Clear proxy password")
    clear_client_key = forms.BooleanField(required=False, label="Clear client key")

    class Meta:
        model = Remote
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in SECRET_FIELDS:
            self.initial[field] = ""
            if self.instance.pk and getattr(self.instance, field):
                self.fields[field].help_text = "A value is set. " + self.fields[field].help_text

    def _secret(self, field: str) -> str:
        value = self.cleaned_data.get(field, "")
        if self.cleaned_data.get(f"clear_{field}"):
            return ""
        if not value and self.instance.pk:
            return Remote.objects.filter(pk=self.instance.pk).values_list(field, flat=True).first() or ""
        if value:  # typed in: supplied with this change, kept even if the URL moves
            self.instance.supplied_secrets = self.instance.supplied_secrets | {field}
        return value

    def clean_password(self) -> str:
        return self._secret("password")

    def clean_proxy_password(self) -> str:
        return self._secret("proxy_password")

    def clean_client_key(self) -> str:
        return self._secret("client_key")

    def clean_bearer_token(self) -> str:
        return self._secret("bearer_token")

    def clean(self):
        cleaned = super().clean()
        for field in SECRET_FIELDS:
            if cleaned.get(f"clear_{field}"):
                cleaned[field] = ""
        return cleaned


def _task_link(task: SyncTask | None) -> str:
    if task is None:
        return "—"
    url = reverse("admin:pulp_downloads_synctask_change", args=[task.pk])
    return format_html('<a href="{}">{}</a>', url, task.get_state_display())


@admin.register(Remote)
class RemoteAdmin(admin.ModelAdmin):
    form = RemoteAdminForm
    list_display = ("name", "url", "policy", "latest_task", "updated")
    list_filter = ("policy",)
    search_fields = ("name", "url")
    readonly_fields = ("created", "updated", "latest_task")
    actions = ["sync_selected"]
    fieldsets = (
        ("General", {"fields": ("name", "url", "policy", "verify_before_serve", "headers",
                                "latest_task", "created", "updated")}),
        ("TLS", {"fields": ("tls_validation", "ca_cert", "client_cert", "client_key",
                            "clear_client_key")}),
        ("Authentication", {"fields": ("username", "password", "clear_password",
                                       "bearer_token", "clear_bearer_token")}),
        ("Proxy", {"fields": ("proxy_url", "proxy_username", "proxy_password",
                              "clear_proxy_password")}),
        ("Mirrors", {"fields": ("mirrors", "mirrorlist_url")}),
        ("Limits", {"fields": ("download_concurrency", "max_retries", "rate_limit",
                               "total_timeout", "connect_timeout", "sock_connect_timeout",
                               "sock_read_timeout")}),
    )


    def save_model(self, request, obj: Remote, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if obj.dropped_secrets:
            names = ", ".join(name.replace("_", " ") for name in obj.dropped_secrets)
            self.message_user(
                request,
                f"{obj.name}: cleared {names}, which would now reach a server it was not "
                "given for (the URL, mirrors or proxy changed). Enter it again if that is "
                "intended.",
                messages.WARNING,
            )

    @admin.display(description="latest sync")
    def latest_task(self, obj: Remote) -> str:
        if obj.pk is None:
            return "—"
        return _task_link(obj.sync_tasks.order_by("-created").first())

    def has_sync_permission(self, request) -> bool:
        """The sync action needs ``pulp_downloads.sync_remote``."""
        return request.user.has_perm("pulp_downloads.sync_remote")

    @admin.action(description="Sync selected remotes", permissions=["sync"])
    def sync_selected(self, request, queryset) -> None:
        for remote in queryset:
            try:
                task = enqueue_sync(remote)
            except SyncAlreadyActive as exc:
                self.message_user(request, f"{remote.name}: {exc}", messages.WARNING)
                continue
            url = reverse("admin:pulp_downloads_synctask_change", args=[task.pk])
            self.message_user(
                request,
                format_html('Sync of {} queued: <a href="{}">task {}</a> ({}).',
                            remote.name, url, task.pk, task.get_state_display()),
                messages.SUCCESS,
            )


@admin.register(SyncTask)
class SyncTaskAdmin(admin.ModelAdmin):
    list_display = ("created", "remote", "state", "progress", "finished")
    list_filter = ("state", "remote")
    actions = ["cancel_selected"]
    change_form_template = "admin/pulp_downloads/synctask/change_form.html"
    readonly_fields = ("id", "remote", "state", "created", "started", "finished", "heartbeat",
                       "worker", "progress", "files_total", "files_done", "bytes_total",
                       "bytes_done", "error", "summary", "failures", "backend_task_id")
    fields = readonly_fields

    @admin.display(description="progress")
    def progress(self, obj: SyncTask) -> str:
        failed = f" ({obj.files_failed} failed)" if obj.files_failed else ""
        return (f"{obj.files_done}/{obj.files_total} files{failed}, "
                f"{obj.bytes_done / 1e6:.1f}/{obj.bytes_total / 1e6:.1f} MB")

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
        return [path("<uuid:pk>/cancel/", cancel, name="pulp_downloads_synctask_cancel"),
                *super().get_urls()]

    def cancel_view(self, request, pk):
        """POST: cancel one task (the button on its page)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_cancel_permission(request):
            raise PermissionDenied
        task = get_object_or_404(SyncTask, pk=pk)
        if task.cancel(by=request.user.get_username()):
            self.message_user(request, f"Canceled the sync of {task.remote}.", messages.SUCCESS)
        else:
            self.message_user(request, f"The sync is {task.get_state_display().lower()}: "
                                       "nothing to cancel.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:pulp_downloads_synctask_change", args=[pk]))

    def render_change_form(self, request, context, add=False, change=False, form_url="",
                           obj=None):
        context["show_cancel"] = (obj is not None and obj.is_active
                                  and self.has_cancel_permission(request))
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ("sha256", "size", "created")
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


@admin.register(ContentUnit)
class ContentUnitAdmin(admin.ModelAdmin):
    list_display = ("relative_path", "remote", "size", "artifact")
    list_filter = ("remote",)
    search_fields = ("relative_path", "sha256")
    readonly_fields = ("remote", "relative_path", "sha256", "size", "artifact", "last_error",
                       "created", "updated")

    def has_add_permission(self, request) -> bool:
        return False
