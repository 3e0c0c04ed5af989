"""API viewsets: remotes (CRUD + sync), tasks, artifacts and content (read-only)."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import Artifact, ContentUnit, Remote, SyncTask
from ..tasks import SyncAlreadyActive, enqueue_repair, enqueue_sync
from .filters import ArtifactFilter, ContentUnitFilter, SyncTaskFilter
from .permissions import ModelPermissions
from .renderers import RENDERERS
from .serializers import (
    ArtifactSerializer,
    ContentUnitSerializer,
    NoInputSerializer,
    RemoteSerializer,
    RepairRequestSerializer,
    SyncStartedSerializer,
    SyncTaskSerializer,
    href,
)


def already_active(exc: SyncAlreadyActive, request) -> Response:
    """409: a task of that remote already waits or runs; its href is in ``task``."""
    body = {"detail": str(exc)}
    if exc.active is not None:
        body["task"] = href("task-detail", exc.active.pk, request)
    return Response(body, status=status.HTTP_409_CONFLICT)


class NoInputActions:
    """Actions listed in ``no_input_actions`` take no body: their browsable-API page shows
    a button alone, not the object's form."""

    no_input_actions: tuple[str, ...] = ()

    def get_serializer_class(self):
        if getattr(self, "action", None) in self.no_input_actions:
            return NoInputSerializer
        return super().get_serializer_class()


class RemoteViewSet(NoInputActions, viewsets.ModelViewSet):
    """Remotes: where content comes from and how to reach it."""

    renderer_classes = RENDERERS

    queryset = Remote.objects.all()
    serializer_class = RemoteSerializer
    permission_classes = [ModelPermissions]
    action_permissions = {
        "sync": ["%(app_label)s.view_remote", "%(app_label)s.sync_remote"],
    }
    filterset_fields = {"name": ["exact"], "policy": ["exact"]}
    no_input_actions = ("sync",)

    @extend_schema(
        request=None,
        responses={202: SyncStartedSerializer,
                   409: OpenApiResponse(description="A sync of this remote is already queued")},
    )
    @action(detail=True, methods=["post"])
    def sync(self, request, pk=None):
        """Queue a sync of this remote; answers 202 with the task's href."""
        remote = self.get_object()
        try:
            task = enqueue_sync(remote)
        except SyncAlreadyActive as exc:
            return already_active(exc, request)
        return Response({"task": href("task-detail", task.pk, request)},
                        status=status.HTTP_202_ACCEPTED)


class SyncTaskViewSet(NoInputActions, viewsets.ReadOnlyModelViewSet):
    """Tasks (syncs and repairs) with their state, outcome, progress, error and summary."""

    renderer_classes = RENDERERS

    queryset = SyncTask.objects.select_related("remote")
    serializer_class = SyncTaskSerializer
    permission_classes = [ModelPermissions]
    action_permissions = {
        "cancel": ["%(app_label)s.view_synctask", "%(app_label)s.cancel_synctask"],
    }
    filterset_class = SyncTaskFilter
    no_input_actions = ("cancel",)

    @extend_schema(
        request=None,
        responses={200: SyncTaskSerializer,
                   409: OpenApiResponse(description="The task is not waiting or running")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a waiting or running sync: it ends as ``canceled`` within a few seconds;
        files already stored stay."""
        task = self.get_object()
        if not task.cancel(by=request.user.get_username()):
            return Response(
                {"detail": f"The task is {task.state}: only a waiting or running task can be "
                           "canceled."},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(SyncTaskSerializer(task, context=self.get_serializer_context()).data)


class ArtifactViewSet(viewsets.ReadOnlyModelViewSet):
    """Stored files, filterable by any digest."""

    renderer_classes = RENDERERS

    queryset = Artifact.objects.all()
    serializer_class = ArtifactSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ArtifactFilter


class ContentUnitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         viewsets.GenericViewSet):
    """What remotes list, and the Artifact holding each file once downloaded."""

    renderer_classes = RENDERERS

    queryset = ContentUnit.objects.all()
    serializer_class = ContentUnitSerializer
    permission_classes = [ModelPermissions]
    filterset_class = ContentUnitFilter


class CanRepair(BasePermission):
    """``pulp_downloads.repair_artifacts``."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated
                    and request.user.has_perm("pulp_downloads.repair_artifacts"))


class RepairView(APIView):
    """Check every Artifact's file (of one remote's content, or all) and fetch missing or
    corrupt ones again from the remotes that list them, as a background task."""

    permission_classes = [CanRepair]
    renderer_classes = RENDERERS
    serializer_class = RepairRequestSerializer

    def get_serializer(self, *args, **kwargs):  # the browsable API's form
        return RepairRequestSerializer(*args, **kwargs)

    @extend_schema(
        request=RepairRequestSerializer,
        responses={202: SyncStartedSerializer,
                   409: OpenApiResponse(description="A task of this remote (or a repair of "
                                                    "all) is already queued or running")},
    )
    def post(self, request):
        """Queue a repair; answers 202 with the task's href."""
        serializer = RepairRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        remote = serializer.validated_data.get("remote")
        try:
            task = enqueue_repair(remote,
                                  verify_digests=serializer.validated_data["verify_digests"])
        except SyncAlreadyActive as exc:
            return already_active(exc, request)
        return Response({"task": href("task-detail", task.pk, request)},
                        status=status.HTTP_202_ACCEPTED)
