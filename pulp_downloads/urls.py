"""The app's URLs: landing page, status, API (with its log-in pages) and content."""
from django.contrib.auth import views as auth_views
from django.shortcuts import render
from django.urls import include, path

import pulp_downloads

from .metrics import metrics_view
from .status import status


def landing(request):
    """``/``: links to the admin, the API, its docs, the status and the content."""
    return render(request, "pulp_downloads/index.html", {"version": pulp_downloads.__version__})


#: The browsable API's log-in and log-out (as ``rest_framework.urls``; the page branded).
api_auth = ([
    path("login/", auth_views.LoginView.as_view(template_name="pulp_downloads/api_login.html"),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
], "rest_framework")

urlpatterns = [
    path("", landing, name="landing"),
    path("status/", status, name="status"),
    path("metrics", metrics_view, name="metrics"),
    path("api/auth/", include(api_auth)),
    path("api/", include("pulp_downloads.api.urls")),
    path("content/", include("pulp_downloads.content.urls")),
]
