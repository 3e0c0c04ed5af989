"""Filters for the list endpoints.

A digest parameter (``?digest=``, ``?sha256=`` ...) that is not a hex digest of a length
it can have is a ``400`` naming the parameter, not an empty list: a typo or a truncated
digest must not read as "no such file".
"""
from __future__ import annotations

import re

import django_filters
from django import forms
from django.db import models
from django.db.models import Q

from ..download.digests import HEX_LENGTHS
from ..models import Artifact, ContentUnit, SyncTask

_HEX = re.compile(r"[0-9a-f]+")


class HexDigestField(forms.CharField):
    """A hex digest of one of ``algorithms`` (told by its length), in lower case."""

    def __init__(self, *, algorithms: tuple[str, ...], **kwargs) -> None:
        self.lengths = {HEX_LENGTHS[name]: name for name in algorithms}
        super().__init__(**kwargs)

    def to_python(self, value):
        value = super().to_python(value).lower()
        if value and (not _HEX.fullmatch(value) or len(value) not in self.lengths):
            kinds = [f"{length} ({name})" for length, name in sorted(self.lengths.items())]
            listed = (", ".join(kinds[:-1]) + " or " + kinds[-1]) if len(kinds) > 1 \
                else kinds[0]
            raise forms.ValidationError(
                f"Enter a hex digest: {listed} hexadecimal digits; got {len(value)} "
                "character(s)" + ("" if _HEX.fullmatch(value) else ", not all hexadecimal")
                + ".", code="invalid")
        return value


class HexDigestFilter(django_filters.CharFilter):
    """``?<name>=<hex digest>``: ``algorithms`` says which lengths it may have."""

    field_class = HexDigestField


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

    digest = HexDigestFilter(method="filter_digest", algorithms=tuple(Artifact.DIGEST_FIELDS),
                             help_text="A hex digest of any algorithm.")

    class Meta:
        model = Artifact
        fields = {name: ["exact"] for name in Artifact.DIGEST_FIELDS}
        # The digest columns (the only fields filtered on) take a hex digest of their own
        # algorithm.
        filter_overrides = {models.CharField: {
            "filter_class": HexDigestFilter,
            "extra": lambda field: {"algorithms": (field.name,)},
        }}

    def filter_digest(self, queryset, name, value):
        columns = [field for field in Artifact.DIGEST_FIELDS
                   if HEX_LENGTHS.get(field) == len(value)]
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
    sha256 = HexDigestFilter(algorithms=("sha256",), help_text="The file's sha256.")

    class Meta:
        model = ContentUnit
        fields = {"remote": ["exact"], "relative_path": ["exact"], "sha256": ["exact"]}
