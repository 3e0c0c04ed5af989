"""URL configuration: the admin, and the app's own URLs (API, content)."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("pulp_downloads.urls")),
]
