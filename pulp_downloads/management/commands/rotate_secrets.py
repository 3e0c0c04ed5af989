"""``manage.py rotate_secrets``: re-encrypt every stored secret (the secret fields and the
values of custom headers) under the first key."""
from __future__ import annotations

import json

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from pulp_downloads.models import SECRET_FIELDS, Remote
from pulp_downloads.models.fields import PREFIX, encrypt, rotate


class Command(BaseCommand):
    help = ("Re-encrypt every Remote secret with the first key of PULP_DOWNLOADS_DB_KEY. "
            "Put the new key first, keep the old ones after it, run this, then drop the old "
            "keys.")

    def handle(self, *args, **options) -> None:
        rotated = 0
        problems: list[str] = []

        def again(name: str, what: str, value):
            """``value`` under the first key (``None``: nothing to do, or unreadable)."""
            nonlocal rotated
            if not value or not isinstance(value, str):
                return None
            try:
                new = rotate(value) if value.startswith(PREFIX) else encrypt(value)
            except InvalidToken:
                problems.append(f"remote {name!r}: {what} cannot be decrypted with any key")
                return None
            rotated += 1
            return new

        for pk, name in Remote.objects.values_list("pk", "name"):
            stored = self._stored_values(pk)
            headers = _as_dict(stored.pop("headers"))
            changes = {}
            for field, value in stored.items():
                if (new := again(name, field, value)) is not None:
                    changes[field] = new
            for header, value in headers.items():
                if (new := again(name, f"{header} header", value)) is not None:
                    headers[header] = new
                    changes["headers"] = json.dumps(headers)
            if changes:
                with transaction.atomic():
                    self._write_stored_values(pk, changes)
        unreadable = len(problems)
        for problem in problems:
            self.stderr.write(problem)
        self.stdout.write(f"Re-encrypted {rotated} secret(s) under the first key.")
        if unreadable:
            raise CommandError(
                f"{unreadable} secret(s) could not be decrypted and were left as they were; "
                "add the key they were stored with to PULP_DOWNLOADS_DB_KEY and run again."
            )

    @staticmethod
    def _stored_values(pk) -> dict[str, str]:
        """The secrets of one row as stored (encrypted), without decrypting them."""
        from django.db import connection

        table = connection.ops.quote_name(Remote._meta.db_table)
        fields = (*SECRET_FIELDS, "headers")
        columns = ", ".join(connection.ops.quote_name(Remote._meta.get_field(f).column)
                            for f in fields)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {table} WHERE id = %s", [pk])
            row = cursor.fetchone()
        return dict(zip(fields, row))

    @staticmethod
    def _write_stored_values(pk, values: dict[str, str]) -> None:
        from django.db import connection

        table = connection.ops.quote_name(Remote._meta.db_table)
        assignments = ", ".join(
            f"{connection.ops.quote_name(Remote._meta.get_field(f).column)} = %s" for f in values
        )
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET {assignments} WHERE id = %s",
                           [*values.values(), pk])


def _as_dict(raw) -> dict:
    """The headers column as stored: JSON text (or an already decoded object)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    return dict(raw) if isinstance(raw, dict) else {}
