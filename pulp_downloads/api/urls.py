"""The API's URLs under /api/."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.routers import DefaultRouter

from ..conf import app_settings

from .views import (ArtifactViewSet, ContentUnitViewSet, RemoteViewSet, RepairView,
                    SyncTaskViewSet)

router = DefaultRouter()
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
