"""``taskcanvas users ...``: make accounts and list them, straight on the database.

This is how the first owner comes to exist (before any HTTP login is possible) and how an
operator recovers access. It finds the database as ``taskcanvas db`` does, upgrades the schema
and creates the default organization if needed, and keeps each transaction short, so it is safe
to run beside a server using the same SQLite file.

Exit status (both ``users`` and ``tokens``): 0 done; 1 refused (a name taken, a bad value, no
such user) or the database failed, one line on stderr says why; 2 bad usage or configuration.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tabulate import tabulate

from taskcanvas.cli.db import EXIT_CONFIG, EXIT_DATABASE, DataDirOption
from taskcanvas.cli.render import print_error
from taskcanvas.config import ConfigError, Settings
from taskcanvas.service.accounts import AccountRole, Accounts, account_role
from taskcanvas.service.errors import ServiceError
from taskcanvas.store import Database, StoreError, UnsupportedDatabase, migrations
from taskcanvas.store.models import Organization

__all__ = ["OutputOption", "app", "create_command", "format_time", "list_command", "print_rows", "with_accounts"]

EXIT_REFUSED = 1
OUTPUTS = ("table", "json")

app = typer.Typer(
    name="users",
    help="User accounts: create them, list them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

OutputOption = Annotated[str, typer.Option("--output", "-o", metavar="table|json",
                                           help="A table for people, or JSON for programs.")]
Action = Callable[[Accounts, Organization], Awaitable[int]]


@app.callback()
def _users() -> None:
    """User accounts: create them, list them."""


@app.command("create")
def create(
    username: Annotated[str, typer.Option("--username", metavar="NAME", show_default=False,
                                          help="Letters, digits and single hyphens, at most 32 characters.")],
    email: Annotated[str, typer.Option("--email", metavar="EMAIL", show_default=False,
                                       help="The user's email address; they may log in with it.")],
    name: Annotated[str, typer.Option("--name", help="The user's full name.")] = "",
    password_stdin: Annotated[bool, typer.Option(
        "--password-stdin", help="Read the password from standard input (at least 8 characters). Without it the "
                                 "user has no password and signs in with API tokens only.")] = False,
    role: Annotated[str, typer.Option("--role", metavar="ROLE",
                                      help="owner (runs the whole site), admin (of the default organization), "
                                           "member (own tasks) or auditor (reads everything).")
                    ] = AccountRole.MEMBER.value,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user in the default organization."""
    raise typer.Exit(create_command(username=username, email=email, name=name, password_stdin=password_stdin,
                                    role=role, data_dir=data_dir))


@app.command("list")
def list_(output: OutputOption = "table", data_dir: DataDirOption = None) -> None:
    """List every user with their role."""
    raise typer.Exit(list_command(output=output, data_dir=data_dir))


def create_command(*, username: str, email: str | None = None, name: str = "", password_stdin: bool = False,
                   role: str = AccountRole.MEMBER.value, data_dir: Path | None = None,
                   environ: Mapping[str, str] | None = None) -> int:
    """Create the user and print who was created; the exit status."""
    if role not in set(AccountRole):
        print_error(f"--role must be one of {', '.join(AccountRole)}, not {role!r}")
        return EXIT_CONFIG
    password = None
    if password_stdin:
        password = _read_password()
        if not password:
            print_error("--password-stdin: standard input held no password")
            return EXIT_CONFIG

    async def action(accounts: Accounts, org: Organization) -> int:
        user = await accounts.create_user(username, email=email, password=password, role=role, name=name)
        email_part = f" <{user.email}>" if user.email else ""
        how = ("" if password is not None else
               f"; it has no password: give it a token with `taskcanvas tokens create --username {user.username}`")
        typer.echo(f"Created user {user.username}{email_part} as {role} in organization {org.name}{how}.")
        return 0

    return with_accounts(action, data_dir=data_dir, environ=environ)


def list_command(*, output: str = "table", data_dir: Path | None = None,
                 environ: Mapping[str, str] | None = None) -> int:
    """Print the users as a table or JSON; the exit status."""
    if output not in OUTPUTS:
        print_error(f"--output must be table or json, not {output!r}")
        return EXIT_CONFIG

    async def action(accounts: Accounts, org: Organization) -> int:
        rows: list[dict[str, Any]] = []
        for user in await accounts.list_users():
            role = account_role(await accounts.principal_for(user.id), org.id)
            rows.append({"id": str(user.id), "username": user.username, "email": user.email, "name": user.name,
                         "role": None if role is None else role.value, "active": user.is_active,
                         "has_password": user.password_hash is not None, "created_at": user.created_at})
        if output == "json":
            typer.echo(json.dumps(rows, indent=2, default=datetime.isoformat))
        elif not rows:
            typer.echo("No users yet: create one with `taskcanvas users create --username NAME --email EMAIL "
                       "--role owner`.")
        else:
            print_rows(["USERNAME", "EMAIL", "NAME", "ROLE", "STATUS", "CREATED"], [
                [r["username"], r["email"] or "", r["name"], r["role"] or "",
                 "active" if r["active"] else "suspended", format_time(r["created_at"])] for r in rows])
        return 0

    return with_accounts(action, data_dir=data_dir, environ=environ)


# -- shared with ``taskcanvas tokens`` ------------------------------------------------------


def with_accounts(action: Action, *, data_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run ``action`` on the configured database, ready for use; errors become one line and a status."""
    env = dict(os.environ if environ is None else environ)
    if data_dir is not None:
        env["TASKCANVAS_DATA_DIR"] = str(data_dir)
    try:
        database = Database.from_settings(Settings.load(env))
    except (ConfigError, UnsupportedDatabase) as e:
        print_error(str(e))
        return EXIT_CONFIG
    try:
        return asyncio.run(_run(database, action))
    except ServiceError as e:
        print_error(str(e))
        return EXIT_REFUSED
    except StoreError as e:
        print_error(str(e))
        return EXIT_DATABASE


async def _run(database: Database, action: Action) -> int:
    try:
        await migrations.upgrade(database)
        accounts = Accounts(database)
        return await action(accounts, await accounts.ensure_defaults())
    finally:
        await database.dispose()


def print_rows(headers: list[str], rows: list[list[str]]) -> None:
    typer.echo(tabulate(rows, headers=headers, tablefmt="plain", disable_numparse=True))


def format_time(moment: datetime | None, *, missing: str = "") -> str:
    return missing if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _read_password() -> str:
    """The password from standard input: typed without echo at a terminal, else piped (one line)."""
    if sys.stdin.isatty():
        return getpass.getpass("Password: ")
    return sys.stdin.read().rstrip("\r\n")
