"""Remote: where content comes from, and how to reach it."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from pulp_downloads import urlrules
from pulp_downloads.conf import MAX_RETRIES_LIMIT, MIN_BANDWIDTH, app_settings

from . import validators as v
from .fields import EncryptedHeadersField, EncryptedTextField, UnreadableSecret
from .headers import has_control_characters
from .reach import Cleared, StoredReach, clear_for_new_places

#: Fields whose values are secrets: never shown back, never logged, encrypted at rest. (The
#: values of ``headers`` are secrets too; its names are not.)
SECRET_FIELDS = ("password", "proxy_password", "client_key", "bearer_token")
#: Secrets typed in by people: stripped of surrounding whitespace, no control characters.
TYPED_SECRETS = ("password", "bearer_token", "proxy_password")


class Remote(models.Model):
    """An upstream repository and the settings used to download from it.

    ``Remote.save()`` runs ``full_clean()``, so every entry point (admin, API, commands,
    plugin code) shares the same validation. For the numeric limits, ``None`` means "use the
    default" and ``0`` means what it says: ``max_retries=0`` is a single attempt and a ``0``
    timeout disables that timeout.
    """

    class Policy(models.TextChoices):
        IMMEDIATE = "immediate", "Immediate"
        ON_DEMAND = "on_demand", "On demand"
        STREAMED = "streamed", "Streamed"

    name = models.CharField(max_length=255, unique=True, validators=[v.validate_remote_name],
                            help_text="Unique; part of the content URLs (/content/NAME/...).")
    url = models.CharField("URL", max_length=2048, help_text="URL of the PULP_MANIFEST.")
    policy = models.CharField(
        max_length=16, choices=Policy.choices, default=Policy.IMMEDIATE,
        help_text="Immediate: download everything during sync. On demand: download a file when "
                  "first requested, then keep it. Streamed: stream from upstream on every "
                  "request, never keep.",
    )

    verify_before_serve = models.BooleanField(
        default=False,
        help_text="Content serving (on_demand/streamed): download and validate a file completely "
                  "before sending its first byte, so that clients never see bad bytes.",
    )

    # TLS
    ca_cert = models.TextField(
        "CA certificate(s)", blank=True, default="",
        help_text="PEM certificate(s) trusted to sign the server's certificate.",
    )
    client_cert = models.TextField(
        "client certificate", blank=True, default="",
        help_text="PEM client certificate presented to the server.",
    )
    client_key = EncryptedTextField(
        "client key", blank=True, default="",
        help_text="PEM private key of the client certificate (never shown back).",
    )
    tls_validation = models.BooleanField(
        "TLS validation", default=True, help_text="Verify the server's TLS certificate."
    )

    # Authentication
    username = models.CharField(max_length=255, blank=True, default="")
    password = EncryptedTextField(blank=True, default="")
    bearer_token = EncryptedTextField(
        "bearer token", blank=True, default="",
        help_text="A static token sent as 'Authorization: Bearer ...' to the remote's URL and "
                  "configured mirrors (never shown back).",
    )

    # Proxy
    proxy_url = models.CharField("proxy URL", max_length=2048, blank=True, default="")
    proxy_username = models.CharField(max_length=255, blank=True, default="")
    proxy_password = EncryptedTextField(blank=True, default="")

    # Mirrors
    mirrors = models.JSONField(
        default=list, blank=True,
        help_text="Base URLs that serve the same content as the remote's base URL.",
    )
    mirrorlist_url = models.CharField(
        "mirror list URL", max_length=2048, blank=True, default="",
        help_text="A URL returning mirror base URLs, one per line ('#' starts a comment).",
    )

    # Limits
    download_concurrency = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Simultaneous downloads (empty: the site default).",
    )
    max_retries = models.PositiveIntegerField(
        null=True, blank=True,
        validators=[MaxValueValidator(MAX_RETRIES_LIMIT, message=(
            f"max_retries must be at most {MAX_RETRIES_LIMIT}."))],
        help_text=f"Retries after the first attempt, at most {MAX_RETRIES_LIMIT}; 0 means a "
                  f"single attempt (empty: default).",
    )
    rate_limit = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(v.MIN_RATE_LIMIT)],
        help_text=f"Maximum requests per second, at least {v.MIN_RATE_LIMIT} (empty: unlimited).",
    )
    max_bandwidth = models.PositiveBigIntegerField(
        "max bandwidth", null=True, blank=True, validators=[MinValueValidator(MIN_BANDWIDTH)],
        help_text=f"Bytes per second for all of this remote's downloads together in one "
                  f"process, at least {MIN_BANDWIDTH} (empty: unlimited).",
    )
    total_timeout = models.FloatField(
        null=True, blank=True, validators=[v.validate_timeout],
        help_text="Seconds for a whole request, more than 0 (empty: no limit).",
    )
    connect_timeout = models.FloatField(
        null=True, blank=True, validators=[v.validate_timeout],
        help_text="Seconds to get a connection from the pool, more than 0 (empty: default).",
    )
    sock_connect_timeout = models.FloatField(
        null=True, blank=True, validators=[v.validate_timeout],
        help_text="Seconds to open a TCP/TLS connection, more than 0 (empty: default).",
    )
    sock_read_timeout = models.FloatField(
        null=True, blank=True, validators=[v.validate_timeout],
        help_text="Seconds without receiving a byte, more than 0 (empty: default).",
    )
    headers = EncryptedHeadersField(
        default=dict, blank=True, validators=[v.validate_headers],
        help_text="Extra request headers, as an object of name: value; the values are "
                  "secrets (encrypted, never shown back) sent to the remote's URL and "
                  "configured mirrors only.",
    )

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "remote"
        verbose_name_plural = "remotes"
        permissions = [("sync_remote", "Can sync remote")]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Remote {self.pk}: {self.name}>"

    #: Secrets that the current change supplies again (set by the API, the admin and the
    #: command line before saving); a secret whose value changed counts as supplied too.
    supplied_secrets: frozenset[str] = frozenset()
    #: The same for custom headers: lower-cased names whose values the change gives again.
    supplied_headers: frozenset[str] = frozenset()
    #: Secrets the last ``save()`` dropped because they would have reached a new place
    #: (``"headers"`` when custom headers went; :attr:`dropped_headers` names them).
    dropped_secrets: tuple[str, ...] = ()
    dropped_headers: tuple[str, ...] = ()
    _pending = Cleared()

    @classmethod
    def from_db(cls, db, field_names, values):
        remote = super().from_db(db, field_names, values)
        owner = f"remote {remote.__dict__.get('name') or remote.pk!r}"
        headers = remote.__dict__.get("headers")
        for value in (*(remote.__dict__.get(field) for field in SECRET_FIELDS),
                      *(headers.values() if isinstance(headers, dict) else ())):
            if isinstance(value, UnreadableSecret):
                value.owner = owner
        remote._remember_stored_state()
        return remote

    def _remember_stored_state(self) -> None:
        """What the database holds now: the places each secret reaches, and the secrets."""
        self._stored_state = StoredReach.of(self.__dict__)

    def drop_secrets_for_new_origins(self) -> tuple[str, ...]:
        """Clear each stored secret that a changed ``url``, ``mirrors``, ``mirrorlist_url``
        or ``proxy_url`` would now send to a place it never went to, unless the change
        supplies it again (:attr:`supplied_secrets`, :attr:`supplied_headers`, or a new
        value). The rule is :mod:`pulp_downloads.models.reach`'s. Returns the cleared
        fields."""
        stored = getattr(self, "_stored_state", None)
        if self.pk is None or stored is None:
            return ()
        cleared = clear_for_new_places(self, stored, self.supplied_secrets,
                                       self.supplied_headers)
        # clean() may run more than once before a save (a form, then save()): remember all.
        pending = self._pending
        self._pending = Cleared(
            (*pending.secrets, *(s for s in cleared.secrets if s not in pending.secrets)),
            (*pending.headers, *cleared.headers))
        return cleared.secrets

    def save(self, *args, **kwargs) -> None:
        self.full_clean()
        super().save(*args, **kwargs)
        self._remember_stored_state()
        self.supplied_secrets = self.supplied_headers = frozenset()
        self.dropped_secrets, self.dropped_headers = self._pending.secrets, self._pending.headers
        self._pending = Cleared()

    def clean(self) -> None:
        """Cross-field validation; errors are keyed by the field they concern."""
        errors: dict[str, list[ValidationError]] = {}
        self.drop_secrets_for_new_origins()

        def add(field: str, error: ValidationError | str) -> None:
            errors.setdefault(field, []).append(
                error if isinstance(error, ValidationError) else ValidationError(error)
            )

        conf = app_settings()
        roots = conf.file_url_allowed_roots

        if self.url:
            try:
                urlrules.validate_url(self.url, schemes=urlrules.REMOTE_SCHEMES, roots=roots)
            except ValidationError as exc:
                add("url", exc)
        if self.proxy_url:
            try:
                urlrules.validate_url(self.proxy_url, schemes=urlrules.PROXY_SCHEMES)
            except ValidationError as exc:
                add("proxy_url", exc)
        if self.mirrorlist_url:
            try:
                urlrules.validate_url(self.mirrorlist_url, schemes=urlrules.REMOTE_SCHEMES, roots=roots)
            except ValidationError as exc:
                add("mirrorlist_url", exc)
        if not isinstance(self.mirrors, list):
            add("mirrors", "Mirrors must be a list of base URLs.")
        else:
            for index, mirror in enumerate(self.mirrors):
                if not isinstance(mirror, str):
                    add("mirrors", f"Mirror {index + 1} is not a string.")
                    continue
                try:
                    urlrules.validate_url(mirror, schemes=urlrules.REMOTE_SCHEMES, roots=roots)
                except ValidationError as exc:
                    add("mirrors", f"Mirror {index + 1}: {' '.join(exc.messages)}")
            if self.url:
                for field, message in urlrules.mixed_schemes(self.url, self.mirrors,
                                                             self.mirrorlist_url):
                    add(field, message)

        cap = conf.max_download_concurrency
        if self.download_concurrency is not None and self.download_concurrency > cap:
            add("download_concurrency",
                f"At most {cap} simultaneous downloads are allowed on this site.")

        # Typed secrets lose surrounding whitespace; control characters are refused.
        for field in TYPED_SECRETS:
            value = getattr(self, field)
            if not isinstance(value, str) or not value:
                continue
            setattr(self, field, value.strip())
            if has_control_characters(value.strip()):
                label = self._meta.get_field(field).verbose_name
                add(field, f"The {label} may not contain control characters (a line break "
                           "pasted with it?): it is sent in a header.")
        # Credentials come in pairs.
        if bool(self.username) != bool(self.password):
            missing = "password" if self.username else "username"
            add(missing, "Username and password must be given together.")
        if bool(self.proxy_username) != bool(self.proxy_password):
            missing = "proxy_password" if self.proxy_username else "proxy_username"
            add(missing, "Proxy username and proxy password must be given together.")
        if (self.proxy_username or self.proxy_password) and not self.proxy_url:
            add("proxy_url", "Proxy credentials need a proxy URL.")

        # TLS material must parse, and a client key must match its certificate.
        if self.ca_cert:
            try:
                v.parse_certificates(self.ca_cert)
            except ValidationError as exc:
                add("ca_cert", exc)
        certificate = key = None
        if self.client_cert:
            try:
                certificate = v.parse_certificates(self.client_cert)[0]
            except ValidationError as exc:
                add("client_cert", exc)
        if self.client_key and not isinstance(self.client_key, UnreadableSecret):
            try:
                key = v.parse_private_key(self.client_key)
            except ValidationError as exc:
                add("client_key", exc)
        if self.client_cert and not self.client_key:
            add("client_key", "A client certificate needs its private key.")
        if self.client_key and not self.client_cert:
            add("client_cert", "A client key needs its certificate.")
        if certificate is not None and key is not None:
            if not v.key_matches_certificate(key, certificate):
                add("client_key", "The client key does not match the client certificate.")

        if errors:
            raise ValidationError(errors)
