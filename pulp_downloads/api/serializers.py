"""DRF serializers. Secrets are write-only; Remote validation is the model's own."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty
from rest_framework.utils import html

from ..conf import app_settings
from ..models import SECRET_FIELDS, Artifact, ContentUnit, Remote, SyncTask
from ..models.headers import MASK, masked, merge_headers


def href(view_name: str, pk, request=None) -> str:
    """The API URL of object ``pk``: absolute (``http://host/api/remotes/3/``) when the
    ``request`` is known, as DRF's browsable API expects; without one (management
    commands), absolute under ``PULP_DOWNLOADS_BASE_URL`` when it is set, else the path."""
    path = reverse(view_name, kwargs={"pk": pk})
    if request is not None:
        return request.build_absolute_uri(path)
    return app_settings().base_url + path


class HrefField(serializers.Field):
    """The object's own API URL, e.g. ``http://host/api/remotes/3/`` (without a request in
    the serializer's context, as in management commands: see :func:`href`)."""

    def __init__(self, view_name: str, source: str = "pk", **kwargs):
        self.view_name = view_name
        kwargs.update(read_only=True, source=source)
        super().__init__(**kwargs)

    def to_representation(self, value):
        if value is None:
            return None
        return href(self.view_name, value, self.context.get("request"))


extend_schema_field(OpenApiTypes.STR)(HrefField)


@extend_schema_field({"type": "object", "additionalProperties": {"type": "string",
                                                                  "nullable": True},
                      "example": {"X-Api-Key": MASK}})
class HeadersField(serializers.Field):
    """Extra request headers: names with masked values when read. On write, an object of
    name -> value merged into the stored headers: a string sets or replaces that header,
    ``null`` removes it, the mask keeps the stored value, and headers not named are kept."""

    default_error_messages = {
        "not_a_dict": "Expected an object of header name: value (a string, or null to "
                      "remove that header).",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("style", {"base_template": "dict_field.html"})  # as DictField's
        super().__init__(**kwargs)

    def get_value(self, dictionary):
        if html.is_html_input(dictionary):  # a browsable API form: as DictField reads it
            result = html.parse_html_dict(dictionary, prefix=self.field_name, default=empty)
            if result is not empty:
                return result
            return {} if self.field_name in dictionary else empty
        return dictionary.get(self.field_name, empty)

    def to_representation(self, value):
        return masked(value)

    def to_internal_value(self, data):
        if not isinstance(data, dict) or not all(
                isinstance(name, str) and (value is None or isinstance(value, str))
                for name, value in data.items()):
            self.fail("not_a_dict")
        return dict(data)


class RemoteSerializer(serializers.ModelSerializer):
    """A Remote. ``password``, ``proxy_password``, ``client_key`` and ``bearer_token`` are
    accepted on write and never returned; ``has_*`` fields say whether one is set.

    ``headers`` values are secrets too: shown as ``"********"``; a write changes only the
    headers it names (``null`` removes one).

    A change of ``url``, ``mirrors``, ``mirrorlist_url`` or ``proxy_url`` that adds a place
    (an origin, or a proxy) clears the stored secrets that would reach it, unless the same
    request gives them again.
    """

    href = HrefField("remote-detail")
    password = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                     trim_whitespace=False, style={"input_type": "password"})
    proxy_password = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                           trim_whitespace=False, style={"input_type": "password"})
    client_key = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                       trim_whitespace=False)
    bearer_token = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                         trim_whitespace=False, style={"input_type": "password"})
    has_bearer_token = serializers.SerializerMethodField()
    has_password = serializers.SerializerMethodField()
    has_proxy_password = serializers.SerializerMethodField()
    has_client_key = serializers.SerializerMethodField()
    latest_task = serializers.SerializerMethodField()
    mirrors = serializers.ListField(child=serializers.CharField(), required=False)
    headers = HeadersField(required=False)

    class Meta:
        model = Remote
        fields = [
            "href", "id", "name", "url", "policy", "verify_before_serve",
            "ca_cert", "client_cert", "client_key", "has_client_key", "tls_validation",
            "username", "password", "has_password", "bearer_token", "has_bearer_token",
            "proxy_url", "proxy_username", "proxy_password", "has_proxy_password",
            "mirrors", "mirrorlist_url",
            "download_concurrency", "max_retries", "rate_limit", "max_bandwidth",
            "total_timeout",
            "connect_timeout", "sock_connect_timeout", "sock_read_timeout", "headers",
            "created", "updated", "latest_task",
        ]
        read_only_fields = ["id", "created", "updated"]

    def get_has_password(self, obj) -> bool:
        return bool(obj.password)

    def get_has_proxy_password(self, obj) -> bool:
        return bool(obj.proxy_password)

    def get_has_client_key(self, obj) -> bool:
        return bool(obj.client_key)

    def get_has_bearer_token(self, obj) -> bool:
        return bool(obj.bearer_token)

    def get_latest_task(self, obj) -> str | None:
        task = obj.sync_tasks.order_by("-created").only("pk").first()
        return href("task-detail", task.pk, self.context.get("request")) if task else None

    def validate(self, attrs):
        """Run the model's own validation on the would-be result."""
        if self.instance is not None:
            candidate = Remote.objects.get(pk=self.instance.pk)
        else:
            candidate = Remote()
        supplied_headers: frozenset[str] = frozenset()
        if "headers" in attrs:
            try:
                attrs["headers"], supplied_headers = merge_headers(candidate.headers,
                                                                   attrs["headers"])
            except DjangoValidationError as exc:
                raise serializers.ValidationError({"headers": exc.messages}) from None
        for field, value in attrs.items():
            setattr(candidate, field, value)
        candidate.supplied_secrets = frozenset(f for f in SECRET_FIELDS if f in attrs)
        candidate.supplied_headers = supplied_headers
        self._supplied_headers = supplied_headers
        try:
            candidate.full_clean()
        except DjangoValidationError as exc:
            errors = {}
            for field, messages in exc.message_dict.items():
                key = "non_field_errors" if field == "__all__" else field
                errors[key] = messages
            raise serializers.ValidationError(errors) from None
        return attrs

    def create(self, validated_data):
        return Remote.objects.create(**validated_data)

    def update(self, instance, validated_data):
        for field, value in validated_data.items():
            setattr(instance, field, value)
        instance.supplied_secrets = frozenset(f for f in SECRET_FIELDS if f in validated_data)
        instance.supplied_headers = getattr(self, "_supplied_headers", frozenset())
        instance.save()
        return instance


class SyncTaskSerializer(serializers.ModelSerializer):
    """A task: a ``sync`` of a remote, or a ``repair`` of stored files (of one remote, or of
    all when ``remote`` is null); its state, ``outcome`` (the state for people, e.g.
    ``Completed, 2 failed``), timestamps, progress, error, summary and failures."""

    href = HrefField("task-detail")
    remote = HrefField("remote-detail", source="remote_id", allow_null=True)
    remote_name = serializers.SerializerMethodField()
    outcome = serializers.CharField(
        read_only=True, help_text="The state for people: 'Completed, 2 failed' for a sync "
                                  "that completed with failed files, else the state's label.")
    progress = serializers.SerializerMethodField()

    class Meta:
        model = SyncTask
        fields = ["href", "id", "kind", "remote", "remote_name", "options", "state", "outcome",
                  "created", "started", "finished", "progress", "error", "summary", "failures"]
        read_only_fields = fields

    def get_remote_name(self, obj) -> str | None:
        return obj.remote.name if obj.remote_id is not None else None

    def get_progress(self, obj) -> dict:
        return {
            "files_done": obj.files_done, "files_failed": obj.files_failed,
            "files_total": obj.files_total,
            "bytes_done": obj.bytes_done, "bytes_total": obj.bytes_total,
        }


class ArtifactSerializer(serializers.ModelSerializer):
    href = HrefField("artifact-detail")
    file = serializers.CharField(source="file.name", read_only=True)

    class Meta:
        model = Artifact
        fields = ["href", "id", "file", "size", *Artifact.DIGEST_FIELDS, "created"]
        read_only_fields = fields


class ContentUnitSerializer(serializers.ModelSerializer):
    href = HrefField("content-detail")
    remote = HrefField("remote-detail", source="remote_id")
    artifact = HrefField("artifact-detail", source="artifact_id", allow_null=True,
                         help_text="The stored file, or null until it is downloaded.")

    class Meta:
        model = ContentUnit
        fields = ["href", "id", "remote", "relative_path", "sha256", "size", "artifact",
                  "last_error", "created", "updated"]
        read_only_fields = fields


class SyncStartedSerializer(serializers.Serializer):
    task = serializers.CharField(help_text="The href of the queued sync task.")


class RepairRequestSerializer(serializers.Serializer):
    """What ``POST /api/repair/`` takes: which remote's Artifacts (all when absent) and
    whether to verify every digest."""

    NO_NAME = ("Name the remote whose Artifacts to repair, or leave remote out to repair "
               "every Artifact.")

    remote = serializers.CharField(required=False, allow_blank=False, min_length=1,
                                   error_messages={"blank": NO_NAME, "null": NO_NAME},
                                   help_text="The name of the remote whose Artifacts to check "
                                             "(default: every Artifact).")
    verify_digests = serializers.BooleanField(
        default=False, help_text="Read every file and compare all its digests (slow).")

    def validate_remote(self, value: str) -> Remote:
        remote = Remote.objects.filter(name=value).first()
        if remote is None:
            raise serializers.ValidationError(f"No remote named {value!r}.")
        return remote

    def validate(self, attrs: dict) -> dict:
        # A form's empty field is dropped as "not given" by DRF: given empty, it names no
        # remote, and must not widen the repair to every Artifact.
        if "remote" not in attrs and "remote" in self.initial_data:
            raise serializers.ValidationError({"remote": [self.NO_NAME]})
        return attrs


class NoInputSerializer(serializers.Serializer):
    """The body of an action that takes no input (sync, cancel): the browsable API shows a
    bare button instead of the object's form."""


assert set(SECRET_FIELDS) <= set(RemoteSerializer.Meta.fields)
