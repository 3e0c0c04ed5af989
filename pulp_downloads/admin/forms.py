"""The Remote form of the admin: secrets write-only, mirrors and headers edited as lines
(header values masked), PEM fields in monospaced boxes."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from ..models import SECRET_FIELDS, Remote
from ..models.headers import MASK, masked, merge_headers, split_header_line


class PemTextarea(forms.Textarea):
    """A multi-line, monospaced box for PEM text."""

    def __init__(self, placeholder: str = "", **attrs) -> None:
        attrs = {"rows": 6, "cols": 70, "spellcheck": "false", "placeholder": placeholder,
                 "style": "font-family:monospace", **attrs}
        super().__init__(attrs=attrs)


class LinesField(forms.CharField):
    """A list of strings edited as one item a line; blank lines are ignored."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 70, "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        return [line.strip() for line in text.splitlines() if line.strip()]


class HeaderLinesField(forms.CharField):
    """A dict of header names to values edited as one ``Name: value`` a line. Stored values
    are shown masked; a line left with the mask keeps its stored value."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 70, "spellcheck": "false"})

    def prepare_value(self, value):
        if isinstance(value, dict):  # by name: PostgreSQL's jsonb keeps no order
            return "\n".join(f"{name}: {shown}" for name, shown in masked(value).items())
        return value

    def to_python(self, value) -> dict[str, str]:
        text = super().to_python(value) or ""
        headers: dict[str, str] = {}
        errors = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            header = split_header_line(line)
            if header is None:
                errors.append(f"Line {number}: expected 'Name: value', got {line.strip()!r}.")
            elif header[0].lower() in (known.lower() for known in headers):
                errors.append(f"Line {number}: {header[0]} is given twice.")
            else:
                headers[header[0]] = header[1]
        if errors:
            raise ValidationError(errors)
        return headers


#: The "clear" boxes of the secrets: on the change form only (a new remote has none).
CLEAR_FIELDS = tuple(f"clear_{field}" for field in SECRET_FIELDS)
#: What each secret's box says: on every form, then on the change form only.
SECRET_HELP = {
    "password": ("", "Leave empty to keep the current password."),
    "proxy_password": ("", "Leave empty to keep the current proxy password."),
    "client_key": ("PEM private key. Never shown back.",
                   "Leave empty to keep the current key."),
    "bearer_token": ("Static token sent as 'Authorization: Bearer ...'. Never shown back.",
                     "Leave empty to keep the current token."),
}


class RemoteAdminForm(forms.ModelForm):
    """Secrets are write-only: typed into password inputs, never rendered back.

    On the change form, leaving a secret empty keeps the stored value and a "clear" box
    removes it; the add form has neither (there is nothing to keep).
    """

    password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False))
    proxy_password = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False))
    client_key = forms.CharField(
        required=False, strip=False,
        widget=PemTextarea(placeholder="-----BEGIN PRIVATE KEY-----", autocomplete="off"))
    bearer_token = forms.CharField(
        required=False, strip=False, widget=forms.PasswordInput(render_value=False))
    clear_password = forms.BooleanField(required=False, label="Clear password")
    clear_bearer_token = forms.BooleanField(required=False, label="Clear bearer token")
    clear_proxy_password = forms.BooleanField(required=False, label="Clear proxy password")
    clear_client_key = forms.BooleanField(required=False, label="Clear client key")

    mirrors = LinesField(
        required=False,
        help_text="Base URLs of mirrors holding the same files, one a line. The remote's "
                  "credentials are sent to these too.",
    )
    headers = HeaderLinesField(
        required=False,
        help_text=f"Extra request headers, one <code>Name: value</code> a line. Values are "
                  f"secrets, shown as <code>{MASK}</code>: leave a line as it is to keep its "
                  f"value, type a new value to replace it, delete the line to remove it.",
    )

    class Meta:
        model = Remote
        fields = "__all__"
        widgets = {
            "url": forms.TextInput(attrs={"size": 80}),
            "proxy_url": forms.TextInput(attrs={"size": 80}),
            "mirrorlist_url": forms.TextInput(attrs={"size": 80}),
            "ca_cert": PemTextarea(placeholder="-----BEGIN CERTIFICATE-----"),
            "client_cert": PemTextarea(placeholder="-----BEGIN CERTIFICATE-----"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in SECRET_FIELDS:
            self.initial[field] = ""
            always, on_change = SECRET_HELP[field]
            if self.instance.pk is None:
                self.fields[field].help_text = always
                continue
            is_set = "A value is set." if getattr(self.instance, field) else ""
            self.fields[field].help_text = " ".join(filter(None, (is_set, always, on_change)))
        if self.instance.pk is None:
            for field in CLEAR_FIELDS:
                self.fields.pop(field, None)

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

    def clean_headers(self) -> dict:
        """The lines are the whole set: a line with a new value sets that header, a masked
        line keeps the stored value, a missing line removes the header."""
        given = self.cleaned_data.get("headers") or {}
        row = Remote.objects.filter(pk=self.instance.pk).first() if self.instance.pk else None
        stored = (row.headers or {}) if row is not None else {}
        changes: dict[str, str | None] = {name: None for name in stored
                                          if name.lower() not in {g.lower() for g in given}}
        changes.update(given)
        try:
            headers, supplied = merge_headers(stored, changes)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        self.instance.supplied_headers = self.instance.supplied_headers | supplied
        return headers

    def clean(self):
        cleaned = super().clean()
        for field in SECRET_FIELDS:
            if cleaned.get(f"clear_{field}"):
                cleaned[field] = ""
        return cleaned
