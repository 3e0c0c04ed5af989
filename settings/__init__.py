"""Django settings for the pulp_downloads project.

Every setting an operator may need to change is read from the environment, with defaults
that are safe for a single development machine. The environment is completed first by the
checkout's ``.env`` file (``PULP_DOWNLOADS_ENV_FILE`` names another; variables set in the
environment win), which ``make run`` writes once; see ``settings/environment.py``.
docs/configuration.md lists every variable:

``DEBUG``            ``1``/``true`` turns debug on (default: off).
``SECRET_KEY``       required when ``DEBUG`` is off (the built-in development key is refused
                     then); a fixed development key when ``DEBUG`` is on and it is unset.
``DATABASE_URL``     e.g. ``postgres://user@host:5432/db``; default: SQLite under ``var/``.
``MEDIA_ROOT``       where Artifact files are stored; default ``var/media``.
``PULP_DOWNLOADS_STORAGE``  ``filesystem`` (default, under ``MEDIA_ROOT``) or ``s3``
                     (with ``AWS_STORAGE_BUCKET_NAME``, ``AWS_ACCESS_KEY_ID``,
                     ``AWS_SECRET_ACCESS_KEY``, ``AWS_S3_ENDPOINT_URL``,
                     ``AWS_S3_REGION_NAME``).
``ALLOWED_HOSTS``    comma separated; default ``localhost,127.0.0.1,[::1]``.
``PULP_DOWNLOADS_FILE_ROOTS``  ``os.pathsep``-separated directories that ``file://`` remotes
                     may read from (default: the bundled sample fixtures only).
``PULP_DOWNLOADS_CHECKSUMS``  comma separated digest algorithms to compute
                     (default ``sha224,sha256,sha384,sha512``; sha256 is always required).
``PULP_DOWNLOADS_CONTENT_ORIGIN``  e.g. ``https://content.example.com``: a host name of its
                     own for ``/content/``, where the admin and the API are refused (its
                     host is added to ``ALLOWED_HOSTS``); default: none.

Production behind HTTPS (``manage.py check --deploy`` is clean once they are set; see
docs/operations.md):

``SECURE_SSL_REDIRECT``    ``1``: plain-HTTP requests are redirected to HTTPS (``/content/``
                           excepted: package clients may fetch over HTTP).
``SESSION_COOKIE_SECURE``  ``1``: the session cookie is sent over HTTPS only.
``CSRF_COOKIE_SECURE``     ``1``: the CSRF cookie is sent over HTTPS only.
``SECURE_HSTS_SECONDS``    seconds browsers must use HTTPS only (``Strict-Transport-Security``);
                           with it, ``SECURE_HSTS_INCLUDE_SUBDOMAINS`` and
                           ``SECURE_HSTS_PRELOAD`` default to on (``0`` turns each off).
``SECURE_PROXY_SSL_HEADER``  behind a proxy that terminates TLS: the header it sets to
                           ``https`` (e.g. ``X-Forwarded-Proto``); never set it otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from pulp_downloads.download.addresses import DEFAULT_DENIED_NETWORKS

from .environment import (
    ConfigurationError,
    env_bool,
    env_float,
    env_int,
    env_list,
    load_env_file,
)

BASE_DIR = Path(__file__).resolve().parent.parent
#: The checkout's settings file (``.env``, or ``PULP_DOWNLOADS_ENV_FILE``; ``None``: none),
#: loaded before anything below reads the environment. The environment wins over it.
ENV_FILE = load_env_file(BASE_DIR)
VAR_DIR = Path(os.environ.get("PULP_DOWNLOADS_VAR_DIR", BASE_DIR / "var"))
# The app's data directory (SQLite database, the demo admin's password, metrics) is private
# to its owner; pulp_downloads.dbfiles tightens one made before this rule.
VAR_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
# Prometheus metrics: every process of this machine (web and workers) writes its values
# under one directory, which /metrics adds up (prometheus_client's multiprocess mode). Set
# before anything imports prometheus_client.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-pulp-downloads-development-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
_PUT_IT = (f"in {ENV_FILE} (make run writes one) or the environment" if ENV_FILE else
           "in the environment (PULP_DOWNLOADS_ENV_FILE is empty: no .env file is read)")
if not SECRET_KEY:
    if not DEBUG:
        raise ConfigurationError(
            f"SECRET_KEY is not set: put SECRET_KEY=<a long random string> {_PUT_IT}, "
            "or set DEBUG=1 on a development machine")
    SECRET_KEY = _DEV_SECRET_KEY
elif SECRET_KEY == _DEV_SECRET_KEY and not DEBUG:
    raise ConfigurationError(
        "SECRET_KEY is the built-in development key, which is public: put a secret one "
        f"{_PUT_IT}, or set DEBUG=1 on a development machine")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
#: /content/ on a host of its own: nothing else of the site is served there.
CONTENT_ORIGIN = os.environ.get("PULP_DOWNLOADS_CONTENT_ORIGIN", "").strip().rstrip("/")
if CONTENT_ORIGIN:
    from urllib.parse import urlsplit

    from pulp_downloads.content.security import content_origin_host

    content_origin_host(CONTENT_ORIGIN)  # refuses anything but an http(s) origin
    _content_host = urlsplit(CONTENT_ORIGIN).hostname
    if ":" in _content_host:  # IPv6, as ALLOWED_HOSTS spells it
        _content_host = f"[{_content_host}]"
    if _content_host not in ALLOWED_HOSTS and "*" not in ALLOWED_HOSTS:
        ALLOWED_HOSTS.append(_content_host)

# --- HTTPS and cookies (docs/operations.md, "Production settings") -------------------------
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
#: Package clients may fetch content over plain HTTP (the fast path never redirects either).
SECURE_REDIRECT_EXEMPT = [r"^content/"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
#: No script reads the CSRF cookie: Django's forms and DRF's browsable API put the token in
#: the page.
CSRF_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
if SECURE_HSTS_SECONDS < 0:
    raise ConfigurationError("SECURE_HSTS_SECONDS must be a whole number of seconds")
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS",
                                          SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", SECURE_HSTS_SECONDS > 0)
if os.environ.get("SECURE_PROXY_SSL_HEADER", "").strip():
    _proxy_header = os.environ["SECURE_PROXY_SSL_HEADER"].strip().upper().replace("-", "_")
    SECURE_PROXY_SSL_HEADER = (f"HTTP_{_proxy_header}", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before django_tasks_db: its ``db_worker`` command is replaced by the app's own, which
    # reaps abandoned sync tasks and survives database outages.
    "pulp_downloads",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # First: it sandboxes every /content/ answer, the other middleware's included.
    "pulp_downloads.content.security.ContentSecurityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "settings.urls"
WSGI_APPLICATION = "settings.wsgi.application"
ASGI_APPLICATION = "settings.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_default_db_url = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(os.environ.get("DATABASE_URL") or _default_db_url)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server and a worker read while another writes; IMMEDIATE transactions
    # take the write lock up front so concurrent writers wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
    )
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # A file (not memory) so that worker processes started by tests see the test database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("TEST_DATABASE_NAME") or str(VAR_DIR / "test-db.sqlite3")
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", 0)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Storage --------------------------------------------------------------------------------
MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or str(VAR_DIR / "media")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or str(VAR_DIR / "static")
#: The ASGI application serves static files itself (as with DEBUG on); otherwise the front
#: web server serves STATIC_ROOT, filled by ``collectstatic``.
SERVE_STATIC = env_bool("SERVE_STATIC", False)
#: Where Artifacts are stored: ``filesystem`` (MEDIA_ROOT) or ``s3`` (django-storages' S3
#: backend, configured by its own AWS_* names below).
STORAGE_KIND = os.environ.get("PULP_DOWNLOADS_STORAGE", "filesystem").strip().lower()
if STORAGE_KIND == "filesystem":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
elif STORAGE_KIND == "s3":
    _missing = [name for name in ("AWS_STORAGE_BUCKET_NAME", "AWS_ACCESS_KEY_ID",
                                  "AWS_SECRET_ACCESS_KEY") if not os.environ.get(name)]
    if _missing:
        raise ConfigurationError(
            f"PULP_DOWNLOADS_STORAGE=s3 needs {', '.join(_missing)} in the environment")
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": os.environ["AWS_STORAGE_BUCKET_NAME"],
        "access_key": os.environ["AWS_ACCESS_KEY_ID"],
        "secret_key": os.environ["AWS_SECRET_ACCESS_KEY"],
        "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
        "region_name": os.environ.get("AWS_S3_REGION_NAME") or None,
        # Objects are named by their sha256 and never overwritten in place.
        "file_overwrite": True,
        "default_acl": None,
        "querystring_auth": True,
        "signature_version": os.environ.get("AWS_S3_SIGNATURE_VERSION", "s3v4"),
        "querystring_expire": env_int("AWS_QUERYSTRING_EXPIRE", 3600),
    }}
    from boto3.s3.transfer import TransferConfig

    # Multipart above 8 MiB, at most 4 parts of 8 MiB in flight per upload: memory stays flat.
    _default_storage["OPTIONS"]["transfer_config"] = TransferConfig(
        multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024,
        max_concurrency=4)
    if os.environ.get("AWS_S3_ADDRESSING_STYLE"):
        _default_storage["OPTIONS"]["addressing_style"] = os.environ["AWS_S3_ADDRESSING_STYLE"]
else:
    raise ConfigurationError(
        f"PULP_DOWNLOADS_STORAGE must be 'filesystem' or 's3', got {STORAGE_KIND!r}")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- REST framework -------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: anonymous requests get 401 with "WWW-Authenticate: Token".
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "pulp_downloads.api.pagination.BoundedLimitOffsetPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "pulp_downloads.api.schema.AutoSchema",
    # Every error answer: {"detail": "...", field: [messages]} (docs/rest-api.md).
    "EXCEPTION_HANDLER": "pulp_downloads.api.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "pulp_downloads API",
    "DESCRIPTION": "Remotes, sync tasks, artifacts and content of pulp_downloads.",
    "VERSION": __import__("pulp_downloads").__version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The documented request bodies are JSON (the browsable API's forms still post forms).
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
}

# --- Tasks ----------------------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": os.environ.get("TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "pulp_downloads": {
            "handlers": ["console"],
            "level": os.environ.get("PULP_DOWNLOADS_LOG_LEVEL", "INFO"),
            "propagate": False,
        },
    },
}

# --- The app's own settings -----------------------------------------------------------------
PULP_DOWNLOADS = {
    # Digests computed for every download and stored on Artifacts. sha256 is always required.
    "ALLOWED_CONTENT_CHECKSUMS": env_list(
        "PULP_DOWNLOADS_CHECKSUMS", ["sha224", "sha256", "sha384", "sha512"]
    ),
    # Directories that file:// remotes may read from. Nothing outside these is reachable.
    "FILE_URL_ALLOWED_ROOTS": env_list(
        "PULP_DOWNLOADS_FILE_ROOTS",
        [str(BASE_DIR / "pulp_downloads" / "fixtures")],
        sep=os.pathsep,
    ),
    # Used when a Remote leaves the matching field empty (null).
    "DEFAULT_DOWNLOAD_CONCURRENCY": env_int("PULP_DOWNLOADS_CONCURRENCY", 10),
    "DEFAULT_MAX_RETRIES": env_int("PULP_DOWNLOADS_MAX_RETRIES", 3),
    # No remote downloads with more connections than this, whatever it asks for.
    "MAX_DOWNLOAD_CONCURRENCY": env_int("PULP_DOWNLOADS_MAX_CONCURRENCY", 100),
    # Outbound address policy: peer addresses (after DNS) in DENIED_NETWORKS are refused
    # unless they are in ALLOWED_NETWORKS. Both are CIDR lists; the default denies loopback,
    # link-local, multicast and 0.0.0.0/8 (IPv4 and IPv6) and keeps private ranges allowed.
    "DENIED_NETWORKS": env_list("PULP_DOWNLOADS_DENIED_NETWORKS", list(DEFAULT_DENIED_NETWORKS)),
    "ALLOWED_NETWORKS": env_list("PULP_DOWNLOADS_ALLOWED_NETWORKS", []),
    # Seconds without a heartbeat after which a running sync task counts as abandoned (its
    # worker was killed or lost); workers then mark it failed. Running tasks beat 4 times in it.
    "TASK_HEARTBEAT_TIMEOUT": env_float("PULP_DOWNLOADS_TASK_HEARTBEAT_TIMEOUT", 60),
    # Behind nginx: the internal location (URL path) that aliases MEDIA_ROOT/artifact/, so
    # stored files are sent by nginx via X-Accel-Redirect (see docs/content.md).
    "CONTENT_X_ACCEL_REDIRECT": os.environ.get("PULP_DOWNLOADS_CONTENT_X_ACCEL_REDIRECT", ""),
    # Seconds a content process remembers where a path's stored file is.
    "CONTENT_CACHE_TTL": env_float("PULP_DOWNLOADS_CONTENT_CACHE_TTL", 30),
    # Stored Artifacts in object storage: answer /content/ with a redirect to a presigned URL
    # (on), or stream them through the content app (off).
    "REDIRECT_TO_OBJECT_STORAGE": env_bool("PULP_DOWNLOADS_REDIRECT_TO_OBJECT_STORAGE", True),
    # Bytes per second for all downloads of one process together (empty: no cap); each
    # remote can have its own cap too (Remote.max_bandwidth).
    "MAX_BANDWIDTH": os.environ.get("PULP_DOWNLOADS_MAX_BANDWIDTH", ""),
    # Seconds a partial download kept for the next sync to resume may stay untouched.
    "PARTIAL_MAX_AGE": env_float("PULP_DOWNLOADS_PARTIAL_MAX_AGE", 7 * 86400),
    # Seconds a sync's database step (planning, recording units, storing a batch) is retried,
    # with backoff, while the database is unavailable (0: not retried).
    "DATABASE_RETRY_TIME": env_float("PULP_DOWNLOADS_DATABASE_RETRY_TIME", 60),
    # Order each remote's mirrors by measured speed and spread new downloads over the
    # fastest few (off: the primary first, then the mirrors in their configured order).
    "MIRROR_RANKING": env_bool("PULP_DOWNLOADS_MIRROR_RANKING", True),
    # A bearer token that may read /metrics (a Prometheus scraper); empty: only users with
    # the pulp_downloads.view_metrics permission.
    "METRICS_TOKEN": os.environ.get("PULP_DOWNLOADS_METRICS_TOKEN", ""),
    # A separate origin for /content/ (e.g. https://content.example.com): requests to its host
    # get /content/ (and /status/) only; empty: none.
    "CONTENT_ORIGIN": CONTENT_ORIGIN,
    # Whether anonymous clients may read /api/schema/ and /api/docs/ (else: logged-in users).
    "PUBLIC_API_DOCS": env_bool("PULP_DOWNLOADS_PUBLIC_API_DOCS", True),
}
