"""The API's URLs under /api/."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.routers import APIRootView, DefaultRouter

from ..conf import app_settings
from .renderers import RENDERERS
from .views import (ArtifactViewSet, ContentUnitViewSet, RemoteViewSet, RepairView,
                    SyncTaskViewSet)


class RootView(APIRootView):
    """The API of pulp_downloads: mirrors of remote repositories into content-addressed
    storage. Log in (top right) to use it from this page, or send a token
    (Authorization: Token ...).

    remotes: where content comes from and how to reach it (POST .../sync/ to sync one)
    tasks: syncs and repairs, with state, progress, summary and failures
    artifacts: stored files, filterable by any digest
    content: what remotes list, and the Artifact of each file once downloaded

    Also here: POST /api/repair/ (repair stored files), /api/schema/ (OpenAPI 3) and
    /api/docs/ (interactive documentation). Files are served under /content/.
    """

    name = "API root"
    renderer_classes = RENDERERS


class Router(DefaultRouter):
    """DRF's DefaultRouter with the API's own root view (name, description, renderers)."""

    APIRootView = RootView


router = Router()
router.register("remotes", RemoteViewSet, basename="remote")
router.register("tasks", SyncTaskViewSet, basename="task")
router.register("artifacts", ArtifactViewSet, basename="artifact")
router.register("content", ContentUnitViewSet, basename="content")


class _DocsPermission:
    """Anonymous access to the schema and docs follows ``PULP_DOWNLOADS["PUBLIC_API_DOCS"]``."""

    def get_permissions(self):
        return [AllowAny() if app_settings().public_api_docs else IsAuthenticated()]


class SchemaView(_DocsPermission, SpectacularAPIView):
    pass


class DocsView(_DocsPermission, SpectacularSwaggerView):
    pass


urlpatterns = [
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", DocsView.as_view(url_name="schema"), name="api-docs"),
    path("repair/", RepairView.as_view(), name="repair"),
    path("", include(router.urls)),
]
