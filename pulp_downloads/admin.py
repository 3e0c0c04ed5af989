"""Django admin for Remotes and Artifacts."""
from __future__ import annotations

from django import forms
from django.contrib import admin

from .models import SECRET_FIELDS, Artifact, ContentUnit, Remote


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
    clear_password = forms.BooleanField(required=False, label="Clear password")
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
        return value

    def clean_password(self) -> str:
        return self._secret("password")

    def clean_proxy_password(self) -> str:
        return self._secret("proxy_password")

    def clean_client_key(self) -> str:
        return self._secret("client_key")

    def clean(self):
        cleaned = super().clean()
        for field in SECRET_FIELDS:
            if cleaned.get(f"clear_{field}"):
                cleaned[field] = ""
        return cleaned


@admin.register(Remote)
class RemoteAdmin(admin.ModelAdmin):
    form = RemoteAdminForm
    list_display = ("name", "url", "policy", "updated")
    list_filter = ("policy",)
    search_fields = ("name", "url")
    readonly_fields = ("created", "updated")
    fieldsets = (
        ("General", {"fields": ("name", "url", "policy", "headers", "created", "updated")}),
        ("TLS", {"fields": ("tls_validation", "ca_cert", "client_cert", "client_key",
                            "clear_client_key")}),
        ("Authentication", {"fields": ("username", "password", "clear_password")}),
        ("Proxy", {"fields": ("proxy_url", "proxy_username", "proxy_password",
                              "clear_proxy_password")}),
        ("Mirrors", {"fields": ("mirrors", "mirrorlist_url")}),
        ("Limits", {"fields": ("download_concurrency", "max_retries", "rate_limit",
                               "total_timeout", "connect_timeout", "sock_connect_timeout",
                               "sock_read_timeout")}),
    )


@admin.register(Artifact)
class ArtifactAdmin(admin.ModelAdmin):
    list_display = ("sha256", "size", "created")
    search_fields = ("sha256", "sha512", "sha384", "sha224", "sha1", "md5")
    readonly_fields = ("file", "size", "md5", "sha1", "sha224", "sha256", "sha384", "sha512",
                       "created")

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
