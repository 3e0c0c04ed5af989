"""Content URLs: listings of directories (paths ending in ``/``) and files."""
from django.urls import path, re_path

from .listing import directory, index
from .views import serve

urlpatterns = [
    path("", index, name="content-index"),
    re_path(r"^(?P<remote_name>[^/]+)/(?P<prefix>(?:.+/)?)$", directory,
            name="content-directory"),
    path("<str:remote_name>/<path:relative_path>", serve, name="content"),
]
