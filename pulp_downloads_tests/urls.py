"""URLs used only by tests: a sync view that downloads through ``fetch()``."""
from django.http import JsonResponse
from django.urls import include, path

from pulp_downloads.download import DownloaderFactory, RemoteConfig


def fetch_view(request):
    factory = DownloaderFactory(RemoteConfig(url=request.GET["url"]), events=None)
    result = factory.build(request.GET["url"]).fetch()
    result.path.unlink()
    return JsonResponse({"sha256": result.digests["sha256"], "size": result.size})


urlpatterns = [
    path("test-fetch/", fetch_view),
    path("", include("settings.urls")),
]
