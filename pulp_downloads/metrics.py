"""Prometheus metrics of downloads, syncs and the content app, gathered over every process.

Web processes and workers write their values to files under ``PROMETHEUS_MULTIPROC_DIR``
(prometheus_client's multiprocess mode; the settings point it at ``var/metrics`` unless the
environment names another directory), and ``GET /metrics`` adds up what all of them wrote,
plus the sync tasks by state read from the database at scrape time. Only processes of one
machine share that directory: on several machines, scrape each machine's web process.
"""
from __future__ import annotations

import atexit
import hmac
import os
import time
import weakref
from typing import Any

from django.http import HttpRequest, HttpResponse
from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily

DOWNLOADS = Counter("pulp_downloads_downloads", "Downloads that ended, by remote and outcome "
                    "(ok, or the error: not_found, digest_mismatch, timeout, ...).",
                    ["remote", "outcome"])
BYTES = Counter("pulp_downloads_downloaded_bytes", "Bytes of finished downloads, by remote.",
                ["remote"])
RETRIES = Counter("pulp_downloads_retries", "Download attempts retried, by the reason "
                  "(http_503, timeout, connection, ...).", ["reason"])
DURATION = Histogram("pulp_downloads_download_duration_seconds",
                     "How long downloads took, first request to validated file, by remote.",
                     ["remote"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
                                          300, 900))
IN_FLIGHT = Gauge("pulp_downloads_downloads_in_flight", "Downloads in progress, by remote.",
                  ["remote"], multiprocess_mode="livesum")
CONTENT_REQUESTS = Counter("pulp_downloads_content_requests", "Requests to /content/, by "
                           "HTTP status and by what answered (storage, on_demand, streamed, "
                           "none).", ["status", "source"])

_started: "weakref.WeakKeyDictionary[object, float]" = weakref.WeakKeyDictionary()

#: Outcome labels of the library's errors (anything else: the class name in snake case).
_OUTCOMES = {"NotFound": "not_found", "NotAuthorized": "not_authorized",
             "DigestValidationError": "digest_mismatch", "SizeValidationError": "size_mismatch",
             "DownloadTimeout": "timeout", "NetworkError": "connection", "TLSError": "tls",
             "IncompleteDownload": "incomplete", "AddressNotAllowed": "address_not_allowed",
             "DownloadCanceled": "canceled"}


def error_label(error: BaseException) -> str:
    """``http_503``, ``timeout``, ``not_found``, ... for a DownloadError."""
    name = type(error).__name__
    if name == "HttpError" and getattr(error, "status", None):
        return f"http_{error.status}"
    if name in _OUTCOMES:
        return _OUTCOMES[name]
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _remote(downloader) -> str:
    return downloader.context.config.name or "(none)"


def download_started(downloader) -> None:
    _started[downloader] = time.monotonic()
    IN_FLIGHT.labels(_remote(downloader)).inc()


def download_ended(downloader, result=None, error: BaseException | None = None) -> None:
    """Count a download's end once (a receiver failing after ``finished`` sends ``failed``
    too: the first one counts)."""
    began = _started.pop(downloader, None)
    if began is None:
        return
    remote = _remote(downloader)
    IN_FLIGHT.labels(remote).dec()
    if error is None:
        DOWNLOADS.labels(remote, "ok").inc()
        BYTES.labels(remote).inc(result.size)
        DURATION.labels(remote).observe(time.monotonic() - began)
    else:
        DOWNLOADS.labels(remote, error_label(error)).inc()


def download_retried(downloader, error: BaseException) -> None:
    RETRIES.labels(error_label(error)).inc()


_content_counters: dict[tuple[int, str], Any] = {}


def content_request(status: int, source: str) -> None:
    counter = _content_counters.get((status, source))
    if counter is None:  # labels() validates and looks up: once per combination
        counter = _content_counters[status, source] = CONTENT_REQUESTS.labels(str(status),
                                                                              source)
    counter.inc()


class SyncTaskCollector:
    """``pulp_downloads_sync_tasks{state}``: how many sync tasks are in each state now."""

    def collect(self):
        from .models import SyncTask

        family = GaugeMetricFamily("pulp_downloads_sync_tasks",
                                   "Sync tasks by state (from the database).", labels=["state"])
        for state, count in SyncTask.count_by_state().items():
            family.add_metric([state], count)
        yield family


def _scraper_token(request: HttpRequest) -> bool:
    """Whether the request sends ``Authorization: Bearer <PULP_DOWNLOADS_METRICS_TOKEN>``."""
    from .conf import app_settings

    token = app_settings().metrics_token
    given = request.headers.get("Authorization", "")
    return bool(token) and given.startswith("Bearer ") and hmac.compare_digest(
        given[len("Bearer "):].encode(), token.encode())


def _user(request: HttpRequest):
    """The user the request authenticates as, the REST API's way (its authentication
    classes: token, session, Basic); raises DRF's ``AuthenticationFailed`` on wrong
    credentials."""
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    authenticators = [cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
    return Request(request, authenticators=authenticators).user


def _refused(status: int, reason: str) -> HttpResponse:
    answer = HttpResponse(
        f"{reason}\n/metrics needs a user with the pulp_downloads.view_metrics permission "
        "(authenticated as for the API: session, Basic or Token), or 'Authorization: "
        "Bearer <PULP_DOWNLOADS_METRICS_TOKEN>'.\n", status=status, content_type="text/plain")
    if status == 401:
        from rest_framework.settings import api_settings

        api = api_settings.DEFAULT_AUTHENTICATION_CLASSES
        challenge = api[0]().authenticate_header(None) if api else None
        answer["WWW-Authenticate"] = 'Bearer realm="metrics"' + (
            f", {challenge}" if challenge else "")
    return answer


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: every process's metrics in Prometheus text format.

    For the scraper's bearer token (``PULP_DOWNLOADS_METRICS_TOKEN``), or a user with
    ``pulp_downloads.view_metrics`` authenticated as for the API. ``401`` (with
    ``WWW-Authenticate``) without credentials or with wrong ones; ``403`` for a user without
    the permission.
    """
    from rest_framework.exceptions import AuthenticationFailed

    if not _scraper_token(request):
        try:
            user = _user(request)
        except AuthenticationFailed as exc:
            return _refused(401, str(exc.detail))
        if not user or not user.is_authenticated:
            return _refused(401, "Authentication credentials were not provided.")
        if not user.has_perm("pulp_downloads.view_metrics"):
            return _refused(403, f"{user.get_username()} may not read the metrics.")
    registry = CollectorRegistry()
    registry.register(SyncTaskCollector())
    body = generate_latest(registry)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        gathered = CollectorRegistry()
        multiprocess.MultiProcessCollector(gathered)
        body += generate_latest(gathered)
    else:  # one process (the directory is not set): its own values
        from prometheus_client import REGISTRY

        body += generate_latest(REGISTRY)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


@atexit.register
def _process_ended() -> None:
    """Live gauges of this process stop counting when it ends."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        try:
            multiprocess.mark_process_dead(os.getpid())
        except OSError:
            pass
