"""Listings of what ``/content/`` serves: the remotes, then each remote's directories and
files, as pulpcore's content app lists its distributions."""
from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from ..models import ContentUnit, Remote


@dataclass(frozen=True)
class Entry:
    """One line of a listing: a directory (``size`` is ``None``) or a file."""

    name: str
    size: int | None = None
    stored: bool = False

    @property
    def is_directory(self) -> bool:
        return self.size is None


def children(paths, prefix: str) -> list[Entry]:
    """The directories and files directly under ``prefix`` among ``paths``, an iterable of
    ``(relative_path, size, stored)``; directories first, each group sorted by name."""
    directories: set[str] = set()
    files: list[Entry] = []
    for relative_path, size, stored in paths:
        rest = relative_path[len(prefix):]
        head, slash, _ = rest.partition("/")
        if slash:
            directories.add(head)
        elif rest:
            files.append(Entry(rest, size, stored))
    return ([Entry(name + "/") for name in sorted(directories)]
            + sorted(files, key=lambda entry: entry.name))


def index(request: HttpRequest) -> HttpResponse:
    """``/content/``: every remote, a directory each."""
    entries = [Entry(name + "/") for name in
               Remote.objects.order_by("name").values_list("name", flat=True)]
    return render(request, "pulp_downloads/listing.html",
                  {"title": "/content/", "entries": entries, "parent": None})


def directory(request: HttpRequest, remote_name: str, prefix: str = "") -> HttpResponse:
    """``/content/{remote}/`` and ``/content/{remote}/{dir}/``: what lies directly under that
    directory (404 when there is nothing)."""
    remote = Remote.objects.filter(name=remote_name).only("pk").first()
    if remote is None:
        raise Http404(f"No remote named {remote_name!r}.")
    units = (ContentUnit.objects.filter(remote=remote, relative_path__startswith=prefix)
             .values_list("relative_path", "size", "artifact_id").iterator(chunk_size=5000))
    entries = children(((path, size, artifact is not None) for path, size, artifact in units),
                       prefix)
    if prefix and not entries:
        raise Http404(f"No directory {prefix!r} in {remote_name}.")
    return render(request, "pulp_downloads/listing.html",
                  {"title": f"/content/{remote_name}/{prefix}", "entries": entries,
                   "parent": "../"})
