"""``manage.py remote``: list, show, create, update and delete remotes from the command line.

Every Remote field has an option (``--help`` of ``create`` and ``update`` lists them, with the
model's own help texts). Secrets never travel on the command line, where ``ps`` and shell
history would keep them: they are read from an environment variable (``--password-env VAR``)
or, for the client key, from a file. Custom header values are secrets too: ``--header-env
'NAME=VAR'`` reads one from the environment (``--header 'NAME: VALUE'`` is for values that
may be seen); ``show`` prints header names with masked values.

Errors name what the user typed (``--concurrency: ...``, not the model field). ``update``
with no option is an error; ``delete`` asks on a terminal, and needs ``--yes`` elsewhere.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Count
from django.urls import reverse

from pulp_downloads.management.output import api_url, to_json
from pulp_downloads.management.subcommands import add_subcommands
from pulp_downloads.models import SECRET_FIELDS, Remote
from pulp_downloads.models.headers import masked, merge_headers, split_header_line

#: Plain options: (flag, model field, type). Their help is the field's help text.
VALUE_OPTIONS = (
    ("--policy", "policy", str),
    ("--username", "username", str),
    ("--proxy-url", "proxy_url", str),
    ("--proxy-username", "proxy_username", str),
    ("--mirrorlist-url", "mirrorlist_url", str),
    ("--concurrency", "download_concurrency", int),
    ("--max-retries", "max_retries", int),
    ("--rate-limit", "rate_limit", float),
    ("--max-bandwidth", "max_bandwidth", int),
    ("--total-timeout", "total_timeout", float),
    ("--connect-timeout", "connect_timeout", float),
    ("--sock-connect-timeout", "sock_connect_timeout", float),
    ("--sock-read-timeout", "sock_read_timeout", float),
)
#: On/off options: --FLAG and --no-FLAG.
SWITCH_OPTIONS = (("--tls-validation", "tls_validation"),
                  ("--verify-before-serve", "verify_before_serve"))
#: PEM text read from a file.
FILE_OPTIONS = (("--ca-cert", "ca_cert"), ("--client-cert", "client_cert"),
                ("--client-key", "client_key"))
#: Secrets read from an environment variable.
ENV_OPTIONS = (("--password-env", "password"), ("--proxy-password-env", "proxy_password"),
               ("--bearer-token-env", "bearer_token"))
#: What ``show`` prints, in order (secrets appear only as set / not set).
SHOWN_FIELDS = ("name", "url", "policy", "verify_before_serve", "tls_validation", "ca_cert",
                "client_cert", "client_key", "username", "password", "bearer_token",
                "proxy_url", "proxy_username", "proxy_password", "mirrors", "mirrorlist_url",
                "download_concurrency", "max_retries", "rate_limit", "max_bandwidth", "total_timeout",
                "connect_timeout", "sock_connect_timeout", "sock_read_timeout", "headers",
                "created", "updated")


#: Help for the fields whose model help text is empty.
_FIELD_HELP = {
    "username": "User name for basic auth at the remote's URL and mirrors (the password "
                "comes with --password-env).",
    "proxy_url": "HTTP(S) proxy to reach the remote through, e.g. http://proxy.example:3128.",
    "proxy_username": "User name for the proxy (the password comes with "
                      "--proxy-password-env).",
}


def _flags(create: bool) -> dict[str, str]:
    """Model field -> what the user typed for it, in ``create`` or ``update``."""
    flags = {field: flag for flag, field, _ in VALUE_OPTIONS}
    flags.update({field: flag for flag, field in SWITCH_OPTIONS + FILE_OPTIONS + ENV_OPTIONS})
    flags.update(mirrors="--mirror", headers="--header", name="NAME",
                 url="URL" if create else "--url")
    return flags


#: The ``options`` keys of every option of ``update``: one at least must be given.
_UPDATE_OPTIONS = ("url", *(field for _, field, _ in VALUE_OPTIONS),
                   *(field for _, field in SWITCH_OPTIONS), "mirrors", "headers",
                   "header_envs", "removed_headers", "no_headers",
                   *(f"{field}_file" for _, field in FILE_OPTIONS),
                   *(f"{field}_env" for _, field in ENV_OPTIONS))


def _help(field: str) -> str:
    text = str(Remote._meta.get_field(field).help_text) or _FIELD_HELP.get(field, "")
    return text.replace("%", "%%")


def _add_field_options(parser: CommandParser) -> None:
    """The options that set Remote fields, shared by ``create`` and ``update``."""
    general = parser.add_argument_group("remote fields")
    for flag, field, kind in VALUE_OPTIONS:
        extra: dict[str, Any] = {}
        if field == "policy":
            extra["choices"] = [choice for choice, _ in Remote.Policy.choices]
        if "choices" not in extra:
            extra["metavar"] = flag[2:].upper().replace("-", "_")
        general.add_argument(flag, dest=field, type=kind, help=_help(field), **extra)
    for flag, field in SWITCH_OPTIONS:
        general.add_argument(flag, dest=field, action=argparse.BooleanOptionalAction,
                             help=_help(field))
    general.add_argument("--mirror", dest="mirrors", action="append", metavar="URL",
                         help=_help("mirrors") + " Repeat for each mirror; replaces the list.")
    general.add_argument("--no-mirrors", dest="mirrors", action="store_const", const=[],
                         help="remove every mirror")
    headers = parser.add_argument_group(
        "extra request headers (values are secrets; others keep their values)")
    headers.add_argument("--header", dest="headers", action="append", metavar="'NAME: VALUE'",
                         help="set or replace one header; repeat for each (the value is "
                              "visible to other users of this machine: prefer --header-env)")
    headers.add_argument("--header-env", dest="header_envs", action="append",
                         metavar="NAME=VAR",
                         help="set or replace header NAME with the value of environment "
                              "variable VAR; repeat for each")
    headers.add_argument("--remove-header", dest="removed_headers", action="append",
                         metavar="NAME", help="remove one header; repeat for each")
    headers.add_argument("--no-headers", dest="no_headers", action="store_true",
                         help="remove every extra header (before setting any given here)")
    files = parser.add_argument_group("TLS material (PEM files)")
    for flag, field in FILE_OPTIONS:
        files.add_argument(flag, dest=f"{field}_file", metavar="PATH",
                           help=_help(field) + " Read from PATH; an empty file removes it.")
    secrets = parser.add_argument_group("secrets (read from the environment, never echoed)")
    for flag, field in ENV_OPTIONS:
        secrets.add_argument(flag, dest=f"{field}_env", metavar="VAR",
                             help=f"read the {field.replace('_', ' ')} from environment "
                                  "variable VAR (empty: remove it)")


def _header_changes(remote: Remote, options: dict[str, Any]) -> dict[str, str | None]:
    """What the header options ask for: name -> new value, or ``None`` to remove it."""
    changes: dict[str, str | None] = {}
    if options.get("no_headers"):
        changes.update({name: None for name in remote.headers or {}})
    for name in options.get("removed_headers") or ():
        changes[name] = None
    for line in options.get("headers") or ():
        header = split_header_line(line)
        if header is None:
            raise CommandError(f"--header {line!r}: expected 'Name: value'.")
        changes[header[0]] = header[1]
    for item in options.get("header_envs") or ():
        name, equals, variable = item.partition("=")
        if not equals or not name.strip() or not variable.strip():
            raise CommandError(f"--header-env {item!r}: expected 'NAME=VAR'.")
        value = os.environ.get(variable.strip())
        if value is None:
            raise CommandError(f"--header-env: environment variable {variable.strip()} is not "
                               "set.")
        changes[name.strip()] = value
    # A name given again (removed, then set) counts once, the last word winning.
    by_name: dict[str, tuple[str, str | None]] = {}
    for name, value in changes.items():
        by_name[name.lower()] = (name, value)
    return dict(by_name.values())


def apply_options(remote: Remote, options: dict[str, Any]) -> None:
    """Set the fields named by the command-line ``options`` on ``remote``."""
    for _, field, _ in VALUE_OPTIONS:
        if options.get(field) is not None:
            setattr(remote, field, options[field])
    for _, field in SWITCH_OPTIONS:
        if options.get(field) is not None:
            setattr(remote, field, options[field])
    if options.get("mirrors") is not None:
        remote.mirrors = options["mirrors"]
    header_changes = _header_changes(remote, options)
    if header_changes:
        try:
            remote.headers, supplied_headers = merge_headers(remote.headers, header_changes)
        except ValidationError as exc:
            raise CommandError(f"--header: {' '.join(exc.messages)}") from None
        remote.supplied_headers = supplied_headers
    supplied = set()
    for flag, field in FILE_OPTIONS:
        path = options.get(f"{field}_file")
        if path is not None:
            try:
                setattr(remote, field, Path(path).read_text(encoding="ascii").strip())
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"{flag} {path}: cannot read it ({exc}).") from None
            supplied.add(field)
    for flag, field in ENV_OPTIONS:
        variable = options.get(f"{field}_env")
        if variable is not None:
            value = os.environ.get(variable)
            if value is None:
                raise CommandError(f"{flag}: environment variable {variable} is not set.")
            setattr(remote, field, value)
            supplied.add(field)
    remote.supplied_secrets = frozenset(supplied & set(SECRET_FIELDS))


class Command(BaseCommand):
    help = ("Manage remotes: list, show NAME, create NAME URL [options], update NAME "
            "[options], delete NAME. 'create --help' lists every option.")

    def add_arguments(self, parser: CommandParser) -> None:
        sub = add_subcommands(parser)
        listing = sub.add_parser("list", help="list remotes as a table",
                                 description="List remotes: name, policy, URL, last sync, "
                                             "content units and how many are stored.")
        listing.add_argument("--json", action="store_true", dest="as_json",
                             help="print a JSON list instead of the table")
        show = sub.add_parser("show", help="show one remote (secrets only as set / not set)",
                              description="Show every field of remote NAME (secrets only as "
                                          "set / not set, header values masked).")
        show.add_argument("name", metavar="NAME", help="the remote's name")
        show.add_argument("--json", action="store_true", dest="as_json",
                          help="print a JSON object instead of lines")
        create = sub.add_parser("create", help="create a remote",
                                description="Create a remote named NAME that syncs from URL "
                                            "(a PULP_MANIFEST).")
        create.add_argument("name", metavar="NAME",
                            help="a name of your choice, unique (it is in /content/NAME/)")
        create.add_argument("url", metavar="URL", help=_help("url"))
        _add_field_options(create)
        update = sub.add_parser("update", help="change fields of a remote",
                                description="Change the given fields of remote NAME; the "
                                            "others keep their values. Give one option at "
                                            "least.")
        update.add_argument("name", metavar="NAME", help="the remote's name")
        update.add_argument("--url", help=_help("url"))
        _add_field_options(update)
        delete = sub.add_parser("delete", help="delete a remote and its content units",
                                description="Delete remote NAME, its content units and its "
                                            "tasks (the Artifacts stay). Asks first on a "
                                            "terminal; elsewhere, give --yes.")
        delete.add_argument("name", metavar="NAME", help="the remote's name")
        delete.add_argument("--yes", action="store_true",
                            help="delete without asking (needed when not on a terminal)")

    def handle(self, *args, action: str, **options) -> None:
        getattr(self, f"do_{action}")(**options)

    def do_list(self, as_json: bool = False, **options) -> None:
        rows, outcomes = [], []  # outcomes: the last task's state as people read it
        remotes = Remote.objects.annotate(
            units=Count("content_units"), stored=Count("content_units__artifact")
        ).order_by("name")
        for remote in remotes:
            last = remote.sync_tasks.order_by("-created").first()
            rows.append({
                "href": api_url(reverse("remote-detail", kwargs={"pk": remote.pk})),
                "name": remote.name, "policy": remote.policy, "url": remote.url,
                "last_sync": last.state if last else "",
                "last_sync_at": (last.finished or last.started or last.created) if last else None,
                "content_units": remote.units, "stored": remote.stored,
            })
            outcomes.append(last.outcome.lower() if last else "")
        if as_json:
            self.stdout.write(to_json(rows, indent=2))
            return
        table = [("NAME", "POLICY", "URL", "LAST SYNC", "UNITS", "STORED")] + [
            (row["name"], row["policy"], row["url"],
             f"{outcome} {row['last_sync_at']:%Y-%m-%d %H:%M}" if outcome else "never",
             str(row["content_units"]), str(row["stored"]))
            for row, outcome in zip(rows, outcomes)]
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width) if i < 4 else cell.rjust(width)
                                        for i, (cell, width) in enumerate(zip(line, widths)))
                              .rstrip())

    def do_show(self, name: str, as_json: bool = False, **options) -> None:
        remote = self._get(name)
        data: dict[str, Any] = {
            "href": api_url(reverse("remote-detail", kwargs={"pk": remote.pk})), "id": remote.pk}
        for field in SHOWN_FIELDS:
            value = getattr(remote, field)
            if field in SECRET_FIELDS:
                value = "(set)" if value else ""
            elif field == "headers":
                value = masked(value)
            elif field in ("ca_cert", "client_cert") and value:
                value = f"(PEM, {value.count('BEGIN CERTIFICATE')} certificate(s))"
            data[field] = value
        if as_json:
            self.stdout.write(to_json(data, indent=2))
            return
        width = max(len(field) for field in data)
        for field, value in data.items():
            if isinstance(value, list):
                value = ", ".join(value)
            elif isinstance(value, dict):
                value = "; ".join(f"{k}: {v}" for k, v in value.items())
            elif value is None or value == "":
                value = "-"
            self.stdout.write(f"{field.ljust(width)}  {value}")

    def do_create(self, name: str, url: str, **options) -> None:
        if Remote.objects.filter(name=name).exists():
            raise CommandError(f"A remote named {name!r} exists; use 'remote update {name}'.")
        remote = Remote(name=name, url=url)
        apply_options(remote, options)
        self._save(remote, f"Created remote {name!r}.", _flags(create=True))

    def do_update(self, name: str, **options) -> None:
        remote = self._get(name)
        if not any(options.get(key) not in (None, False) for key in _UPDATE_OPTIONS):
            raise CommandError("Nothing to update: give at least one option (see 'manage.py "
                               "remote update --help').")
        if options.get("url") is not None:
            remote.url = options["url"]
        apply_options(remote, options)
        self._save(remote, f"Updated remote {name!r}.", _flags(create=False))

    def do_delete(self, name: str, yes: bool = False, **options) -> None:
        remote = self._get(name)
        if not yes:
            self._confirm(remote)
        remote.delete()
        self.stdout.write(f"Deleted remote {name!r}.")

    def _confirm(self, remote: Remote) -> None:
        """Ask on the terminal whether to delete ``remote``; raise unless the answer is yes."""
        if not sys.stdin.isatty():
            raise CommandError(f"Not deleting remote {remote.name!r} without a confirmation: "
                               "there is no terminal to ask on; add --yes to delete it.")
        units = remote.content_units.count()
        self.stdout.write(f"Delete remote {remote.name!r} and its {units} content "
                          f"unit{'' if units == 1 else 's'}? [y/N] ", ending="")
        self.stdout.flush()
        try:
            answer = sys.stdin.readline()
        except KeyboardInterrupt:
            answer = "\n"
        if answer.strip().lower() not in ("y", "yes"):
            raise CommandError(f"Remote {remote.name!r} not deleted.")

    def _save(self, remote: Remote, done: str, flags: dict[str, str]) -> None:
        try:
            remote.save()
        except ValidationError as exc:
            lines = [(f"{flags.get(field, field)}: " if field != "__all__" else "")
                     + " ".join(msgs) for field, msgs in exc.message_dict.items()]
            raise CommandError("Invalid remote:\n  " + "\n  ".join(lines)) from None
        self.stdout.write(done)
        if remote.dropped_secrets:
            names = [f"headers ({', '.join(remote.dropped_headers)})" if name == "headers"
                     else name for name in remote.dropped_secrets]
            self.stderr.write(
                f"Cleared {', '.join(names)}: the new URL, mirrors, mirror list or proxy "
                "would send it to a server it was not given for; give it again to keep it."
            )

    def _get(self, name: str) -> Remote:
        try:
            return Remote.objects.get(name=name)
        except Remote.DoesNotExist:
            raise CommandError(f"No remote named {name!r}.") from None
