"""The API's URLs under /api/."""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from .views import ArtifactViewSet, ContentUnitViewSet, RemoteViewSet, SyncTaskViewSet

router = DefaultRouter()
router.register("remotes", RemoteViewSet, basename="remote")
router.register("tasks", SyncTaskViewSet, basename="task")
router.register("artifacts", ArtifactViewSet, basename="artifact")
router.register("content", ContentUnitViewSet, basename="content")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include(router.urls)),
]
