"""Commands with subcommands (``remote create``, ``task show``): each subcommand's parser
reports its own errors, with its own usage.

argparse hands the arguments a subparser does not know back to the top parser, which then
says "unrecognized arguments" under the top command's usage: a typo in ``remote create
--concurency 4`` showed the usage of ``remote``, not of ``remote create``. The subcommands'
parser refuses them itself.
"""
from __future__ import annotations

import argparse

from django.core.management.base import CommandError, CommandParser

__all__ = ["SubcommandParser", "add_subcommands"]


class SubcommandParser(CommandParser):
    """A subcommand's parser: unknown arguments are its error, shown with its usage (from
    the command line: usage and message on stderr, exit status 2; from ``call_command``:
    a ``CommandError`` carrying both)."""

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        return namespace, extras

    def error(self, message):
        if self.called_from_command_line:
            super().error(message)
        raise CommandError(f"Error: {message}\n{self.format_usage().rstrip()}")


def add_subcommands(parser: CommandParser) -> argparse._SubParsersAction:
    """The subcommands of ``parser``, chosen by the first argument (``options["action"]``)."""
    return parser.add_subparsers(dest="action", required=True, metavar="ACTION",
                                 parser_class=SubcommandParser,
                                 help="what to do; 'ACTION --help' describes its arguments")
