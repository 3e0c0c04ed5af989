"""Filters for the list endpoints."""
from __future__ import annotations

import django_filters
from django.db.models import Q

from ..download.digests import HEX_LENGTHS
from ..models import Artifact, ContentUnit, SyncTask


class SyncTaskFilter(django_filters.FilterSet):
    """``?state=``, ``?state__in=a,b``, ``?remote=<id>`` or ``?remote_name=<name>``."""

    remote_name = django_filters.CharFilter(field_name="remote__name",
                                            help_text="The remote's name.")

    class Meta:
        model = SyncTask
        fields = {"state": ["exact", "in"], "remote": ["exact"], "kind": ["exact"]}


class ArtifactFilter(django_filters.FilterSet):
    """One column per digest (``?sha256=``), or ``?digest=`` matching whichever algorithm
    has that hex length (md5, sha1, sha224, sha256, sha384 or sha512)."""

    digest = django_filters.CharFilter(method="filter_digest",
                                       help_text="A hex digest of any algorithm.")

    class Meta:
        model = Artifact
        fields = {name: ["exact"] for name in Artifact.DIGEST_FIELDS}

    def filter_digest(self, queryset, name, value):
        value = value.strip().lower()
        columns = [field for field in Artifact.DIGEST_FIELDS
                   if HEX_LENGTHS.get(field) == len(value)]
        if not columns:
            return queryset.none()
        match = Q()
        for column in columns:
            match |= Q(**{column: value})
        return queryset.filter(match)


class ContentUnitFilter(django_filters.FilterSet):
    """By remote (``?remote=<id>`` or ``?remote_name=``), path (``?relative_path=``,
    ``?relative_path__startswith=``), ``?sha256=`` and ``?downloaded=true|false``."""

    remote_name = django_filters.CharFilter(field_name="remote__name",
                                            help_text="The remote's name.")
    relative_path__startswith = django_filters.CharFilter(field_name="relative_path",
                                                          lookup_expr="startswith",
                                                          help_text="A path prefix.")
    downloaded = django_filters.BooleanFilter(field_name="artifact", lookup_expr="isnull",
                                              exclude=True)

    class Meta:
        model = ContentUnit
        fields = {"remote": ["exact"], "relative_path": ["exact"], "sha256": ["exact"]}
