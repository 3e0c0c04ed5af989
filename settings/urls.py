"""URL configuration: the admin, and the app's own URLs (API, content)."""
from django.contrib import admin
from django.urls import include, path

# Unknown paths (and ids that are not ids) under /api/ answer JSON, as the API does.
handler404 = "pulp_downloads.api.errors.not_found"
handler500 = "pulp_downloads.api.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("pulp_downloads.urls")),
]
