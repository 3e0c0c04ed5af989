"""The app's URLs: landing page, status, API (with its log-in pages) and content."""
from django.shortcuts import render
from django.urls import include, path

import pulp_downloads

from .metrics import metrics_view
from .status import status


def landing(request):
    """``/``: links to the admin, the API, its docs, the status and the content."""
    return render(request, "pulp_downloads/index.html", {"version": pulp_downloads.__version__})


urlpatterns = [
    path("", landing, name="landing"),
    path("status/", status, name="status"),
    path("metrics", metrics_view, name="metrics"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/", include("pulp_downloads.api.urls")),
    path("content/", include("pulp_downloads.content.urls")),
]
