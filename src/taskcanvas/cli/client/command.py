"""What every client command shares: where the server is, the token, and how a failure ends.

A command's body gets a :class:`~taskcanvas.cli.client.http.Connection` and returns its exit
status; :func:`run` turns a :class:`ClientError` into one ``error: ...`` line and its status
(1 the server refused or could not be reached, 2 bad usage), and Ctrl-C into 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import click
import typer

from taskcanvas.cli.client.http import DEFAULT_URL, ClientError, Connection
from taskcanvas.cli.render import print_error

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

UrlOption = Annotated[str, typer.Option("--url", envvar="TASKCANVAS_URL", metavar="URL",
                                        help="The taskcanvas server.")]
TokenOption = Annotated[str, typer.Option("--token", envvar="TASKCANVAS_TOKEN", metavar="TOKEN", show_default=False,
                                          help="An API token (`taskcanvas tokens create`).")]
OutputOption = Annotated[str, typer.Option("--output", "-o", metavar="table|json",
                                           help="A table for people, or JSON for programs.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

__all__ = ["DEFAULT_URL", "EXIT_USAGE", "OutputOption", "TokenOption", "UrlOption", "YesOption", "confirm",
           "read_stdin", "run"]


def run(body: Callable[[Connection], int], url: str, token: str) -> int:
    """Run ``body`` against the server; its status, or the status of the error it ended with."""
    try:
        if not token:
            raise ClientError("no API token: set TASKCANVAS_TOKEN or pass --token (an owner makes one with "
                              "`taskcanvas tokens create --username NAME`)", exit_code=EXIT_USAGE)
        with Connection(url or DEFAULT_URL, token) as connection:
            return body(connection)
    except ClientError as e:
        print_error(str(e))
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED


def confirm(question: str, yes: bool) -> None:
    """Ask ``question (y/N)`` unless ``--yes``; anything but yes cancels the command."""
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False)
    except click.Abort:  # end of input, or Ctrl-C
        click.echo()
        agreed = False
    if not agreed:
        raise ClientError("canceled")


def read_stdin() -> str:
    """Standard input, without the line end a shell's ``echo`` adds."""
    return sys.stdin.read().rstrip("\r\n")
