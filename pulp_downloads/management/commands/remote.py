"""``manage.py remote``: list, show, create and delete remotes from the command line."""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count

from pulp_downloads.models import SECRET_FIELDS, Remote


class Command(BaseCommand):
    help = "Manage remotes: list, show NAME, create NAME URL [options], delete NAME."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="list remotes as a table")
        listing.add_argument("--json", action="store_true", dest="as_json",
                             help="print a JSON list instead of the table")
        show = sub.add_parser("show", help="show one remote (secrets are never shown)")
        show.add_argument("name")
        create = sub.add_parser("create", help="create or update a remote")
        create.add_argument("name")
        create.add_argument("url")
        create.add_argument("--policy", choices=[c for c, _ in Remote.Policy.choices])
        create.add_argument("--concurrency", type=int, dest="download_concurrency")
        create.add_argument("--max-retries", type=int, dest="max_retries")
        create.add_argument("--username")
        create.add_argument("--password-env", metavar="VAR",
                            help="read the password from this environment variable")
        create.add_argument("--mirror", action="append", dest="mirrors", default=None)
        delete = sub.add_parser("delete", help="delete a remote")
        delete.add_argument("name")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"do_{action}")(**options)

    def do_list(self, as_json: bool = False, **options) -> None:
        rows = []
        remotes = Remote.objects.annotate(
            units=Count("content_units"), stored=Count("content_units__artifact")
        ).order_by("name")
        for remote in remotes:
            last = remote.sync_tasks.order_by("-created").first()
            rows.append({
                "name": remote.name, "policy": remote.policy, "url": remote.url,
                "last_sync": last.state if last else "",
                "last_sync_at": (last.finished or last.started or last.created) if last else None,
                "content_units": remote.units, "stored": remote.stored,
            })
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2, default=str))
            return
        table = [("NAME", "POLICY", "URL", "LAST SYNC", "UNITS", "STORED")] + [
            (row["name"], row["policy"], row["url"],
             f"{row['last_sync']} {row['last_sync_at']:%Y-%m-%d %H:%M}" if row["last_sync"]
             else "never", str(row["content_units"]), str(row["stored"]))
            for row in rows]
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width) if i < 4 else cell.rjust(width)
                                        for i, (cell, width) in enumerate(zip(line, widths)))
                              .rstrip())

    def do_show(self, name: str, **options) -> None:
        remote = self._get(name)
        data = {f.name: getattr(remote, f.name) for f in Remote._meta.concrete_fields}
        for field in SECRET_FIELDS:
            data[field] = "(set)" if data[field] else ""
        self.stdout.write(json.dumps(data, indent=2, default=str))

    def do_create(self, name: str, url: str, **options) -> None:
        import os

        remote = Remote.objects.filter(name=name).first() or Remote(name=name)
        remote.url = url
        for field in ("policy", "download_concurrency", "max_retries", "username", "mirrors"):
            if options.get(field) is not None:
                setattr(remote, field, options[field])
        if options.get("password_env"):
            value = os.environ.get(options["password_env"])
            if value is None:
                raise CommandError(f"environment variable {options['password_env']} is not set")
            remote.password = value
            remote.supplied_secrets = frozenset({"password"})
        created = remote.pk is None
        try:
            remote.save()
        except ValidationError as exc:
            lines = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
            raise CommandError("Invalid remote:\n  " + "\n  ".join(lines)) from None
        self.stdout.write(f"{'Created' if created else 'Updated'} remote {name!r}.")
        if remote.dropped_secrets:
            self.stderr.write(
                f"Cleared {', '.join(remote.dropped_secrets)}: the new URL or mirrors would "
                "send it to a server it was not given for; give it again to keep it."
            )

    def do_delete(self, name: str, **options) -> None:
        self._get(name).delete()
        self.stdout.write(f"Deleted remote {name!r}.")

    def _get(self, name: str) -> Remote:
        try:
            return Remote.objects.get(name=name)
        except Remote.DoesNotExist:
            raise CommandError(f"No remote named {name!r}.") from None
