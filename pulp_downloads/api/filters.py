"""Filters for the list endpoints."""
from __future__ import annotations

import django_filters

from ..models import Artifact, ContentUnit, SyncTask


class SyncTaskFilter(django_filters.FilterSet):
    class Meta:
        model = SyncTask
        fields = {"state": ["exact", "in"], "remote": ["exact"]}


class ArtifactFilter(django_filters.FilterSet):
    class Meta:
        model = Artifact
        fields = {name: ["exact"] for name in Artifact.DIGEST_FIELDS}


class ContentUnitFilter(django_filters.FilterSet):
    relative_path__startswith = django_filters.CharFilter(field_name="relative_path",
                                                          lookup_expr="startswith")
    downloaded = django_filters.BooleanFilter(field_name="artifact", lookup_expr="isnull",
                                              exclude=True)

    class Meta:
        model = ContentUnit
        fields = {"remote": ["exact"], "relative_path": ["exact"], "sha256": ["exact"]}
