"""The app's URLs."""
from django.http import JsonResponse
from django.urls import include, path


def status(request):
    """A liveness probe: answers 200 while the web process serves requests."""
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("status/", status, name="status"),
    path("api/", include("pulp_downloads.api.urls")),
    path("content/", include("pulp_downloads.content.urls")),
]
