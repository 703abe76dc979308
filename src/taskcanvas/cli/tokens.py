"""``taskcanvas tokens ...``: API tokens for a user, made, listed and revoked on the database.

``tokens create`` prints the token and nothing else, so ``TOKEN=$(taskcanvas tokens create ...)``
works; it is shown this once and only its hash is kept. Exit statuses as for ``taskcanvas users``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from taskcanvas.cli.db import EXIT_CONFIG, DataDirOption
from taskcanvas.cli.render import print_error
from taskcanvas.cli.users import EXIT_REFUSED, OUTPUTS, OutputOption, format_time, print_rows, with_accounts
from taskcanvas.service.accounts import Accounts
from taskcanvas.store.models import Organization

__all__ = ["app", "create_command", "list_command", "parse_lifetime", "revoke_command"]

_LIFETIME_RE = re.compile(r"(\d+)([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_LIFETIME_HELP = "expected a duration such as 30d, 12h, 90m or 2w, or 0 for a token that never expires"

app = typer.Typer(
    name="tokens",
    help="API tokens: create, list and revoke a user's tokens.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

UsernameOption = Annotated[str, typer.Option("--username", metavar="USER", show_default=False,
                                             help="Whose tokens: a username or email address.")]


@app.callback()
def _tokens() -> None:
    """API tokens: create, list and revoke a user's tokens."""


@app.command("create")
def create(
    username: UsernameOption,
    name: Annotated[str, typer.Option("--name", help="Tells the user's tokens apart; unique per user.")] = "cli",
    lifetime: Annotated[str, typer.Option("--lifetime", metavar="DURATION",
                                          help="How long it lasts: 30d, 12h, 90m, 2w; 0 never expires.")] = "30d",
    data_dir: DataDirOption = None,
) -> None:
    """Create an API token and print it (only it, on standard output)."""
    raise typer.Exit(create_command(username=username, name=name, lifetime=lifetime, data_dir=data_dir))


@app.command("list")
def list_(username: UsernameOption, output: OutputOption = "table", data_dir: DataDirOption = None) -> None:
    """List a user's API tokens that are not revoked (expired ones too)."""
    raise typer.Exit(list_command(username=username, output=output, data_dir=data_dir))


@app.command("revoke")
def revoke(
    username: UsernameOption,
    token: Annotated[str, typer.Argument(metavar="NAME_OR_ID", show_default=False,
                                         help="The token's name or id (as `tokens list` shows).")],
    data_dir: DataDirOption = None,
) -> None:
    """Revoke one of a user's tokens: it stops working at once."""
    raise typer.Exit(revoke_command(username=username, token=token, data_dir=data_dir))


def parse_lifetime(text: str) -> timedelta | None:
    """``30d`` → 30 days; ``0`` → None (never expires). ValueError for anything else."""
    text = text.strip().lower()
    if text == "0":
        return None
    match = _LIFETIME_RE.fullmatch(text)
    if match is None or int(match[1]) == 0:
        raise ValueError(_LIFETIME_HELP)
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


def create_command(*, username: str, name: str = "cli", lifetime: str = "30d", data_dir: Path | None = None) -> int:
    try:
        duration = parse_lifetime(lifetime)
    except ValueError as e:
        print_error(f"--lifetime {lifetime!r}: {e}")
        return EXIT_CONFIG

    async def action(accounts: Accounts, _org: Organization) -> int:
        user = await accounts.user_by_login(username)
        if user is None:
            return _no_user(username)
        _, token = await accounts.create_token(user.id, name, lifetime=duration)
        typer.echo(token)
        return 0

    return with_accounts(action, data_dir=data_dir)


def list_command(*, username: str, output: str = "table", data_dir: Path | None = None) -> int:
    if output not in OUTPUTS:
        print_error(f"--output must be table or json, not {output!r}")
        return EXIT_CONFIG

    async def action(accounts: Accounts, _org: Organization) -> int:
        user = await accounts.user_by_login(username)
        if user is None:
            return _no_user(username)
        tokens = await accounts.list_tokens(user.id)
        if output == "json":
            rows: list[dict[str, Any]] = [
                {"id": t.key_id, "name": t.name, "created_at": t.created_at, "expires_at": t.expires_at,
                 "last_used_at": t.last_used_at} for t in tokens]
            typer.echo(json.dumps(rows, indent=2, default=datetime.isoformat))
        elif not tokens:
            typer.echo(f"{user.username} has no API tokens: create one with "
                       f"`taskcanvas tokens create --username {user.username}`.")
        else:
            now = datetime.now().astimezone()
            print_rows(["NAME", "ID", "CREATED", "EXPIRES", "LAST USED"], [
                [t.name, t.key_id, format_time(t.created_at),
                 format_time(t.expires_at, missing="never") + (" (expired)" if t.expires_at and t.expires_at <= now
                                                               else ""),
                 format_time(t.last_used_at, missing="never")] for t in tokens])
        return 0

    return with_accounts(action, data_dir=data_dir)


def revoke_command(*, username: str, token: str, data_dir: Path | None = None) -> int:
    async def action(accounts: Accounts, _org: Organization) -> int:
        user = await accounts.user_by_login(username)
        if user is None:
            return _no_user(username)
        if not await accounts.revoke_token(user.id, token):
            print_error(f"{user.username} has no active token {token!r}: see `taskcanvas tokens list --username "
                        f"{user.username}`")
            return EXIT_REFUSED
        typer.echo(f"Revoked token {token} of {user.username}.")
        return 0

    return with_accounts(action, data_dir=data_dir)


def _no_user(login: str) -> int:
    print_error(f"no user {login!r}: see `taskcanvas users list`")
    return EXIT_REFUSED
