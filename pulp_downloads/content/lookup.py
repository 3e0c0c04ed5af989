"""What answers a ``/content/`` path, found with one query cheap enough for every miss of the
content app's path cache (and a second, through the ORM, for a file not stored yet).

Building an ORM query with two joins costs this Python more than a millisecond, so the query
of a path is written once per database backend from the models' metadata (table and column
names) and run as a raw query of :class:`~pulp_downloads.models.Artifact` rows, which the
ORM still converts (file, sizes, aware datetimes).
"""
from __future__ import annotations

from django.db import connection

from ..models import Artifact, ContentUnit, Remote
from .stored import StoredFile

_queries: dict[str, str] = {}


def _query() -> str:
    """``SELECT`` the Artifact of a remote's path (all ``NULL`` when not stored yet) and the
    id of its ContentUnit; parameters: remote name, relative path."""
    query = _queries.get(connection.vendor)
    if query is None:
        q = connection.ops.quote_name
        unit, remote, artifact = ContentUnit._meta, Remote._meta, Artifact._meta

        def column(table: str, model, field: str) -> str:
            return f"{q(table)}.{q(model.get_field(field).column)}"

        selected = ", ".join(column("a", artifact, name)
                             for name in ("id", "file", "size", "sha256", "created"))
        query = _queries[connection.vendor] = (
            f"SELECT {selected}, {column('u', unit, 'id')} AS unit_id"
            f" FROM {q(unit.db_table)} {q('u')}"
            f" INNER JOIN {q(remote.db_table)} {q('r')}"
            f" ON {column('r', remote, 'id')} = {column('u', unit, 'remote')}"
            f" LEFT OUTER JOIN {q(artifact.db_table)} {q('a')}"
            f" ON {column('a', artifact, 'id')} = {column('u', unit, 'artifact')}"
            f" WHERE {column('r', remote, 'name')} = %s"
            f" AND {column('u', unit, 'relative_path')} = %s")
    return query


def find(remote_name: str, relative_path: str) -> StoredFile | ContentUnit | None:
    """What answers ``relative_path`` of the remote ``remote_name``: the :class:`StoredFile`
    of its Artifact, or, when it is not stored, its ContentUnit with Remote and Artifact;
    ``None`` when the remote has no such path.

    The thread's database connection is kept, and closed after an error so that the next
    lookup opens a fresh one."""
    try:
        rows = list(Artifact.objects.raw(_query(), [remote_name, relative_path]))
        if not rows:
            return None
        row = rows[0]
        if row.pk is not None:
            return StoredFile.of(row, relative_path)
        return (ContentUnit.objects.select_related("remote", "artifact")
                .filter(pk=row.unit_id).first())
    except Exception:
        connection.close()
        raise
