"""``taskcanvas db ...``: bring the database's schema up to date, or show where it is.

A sub-app of its own; ``cli/app.py`` mounts it as ``db``. ``taskcanvas serve`` runs the
same upgrade on start; this command does it alone (before a deployment, or to check).
Messages name the database with its password masked.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from taskcanvas.cli.render import print_error
from taskcanvas.config import ConfigError, Settings
from taskcanvas.store import Database, StoreError, UnsupportedDatabase, migrations

EXIT_DATABASE = 1
EXIT_CONFIG = 2

app = typer.Typer(
    name="db",
    help="The database: upgrade its schema, show its revision.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataDirOption = Annotated[Path | None, typer.Option(
    "--data-dir", metavar="DIR", show_default=False,
    help="The data directory (instead of TASKCANVAS_DATA_DIR): the SQLite database lives there unless "
         "TASKCANVAS_DATABASE_URL names another database.")]


@app.callback()
def _db() -> None:
    """The database: upgrade its schema, show its revision."""


@app.command("upgrade")
def upgrade(data_dir: DataDirOption = None) -> None:
    """Upgrade the schema to this taskcanvas's newest revision; nothing changes when it is already there.

    Exit status: 0 upgraded or up to date; 1 the database failed (one line says why); 2 the
    configuration cannot be used.
    """
    raise typer.Exit(upgrade_command(data_dir=data_dir))


@app.command("current")
def current(data_dir: DataDirOption = None) -> None:
    """Show the schema revision the database is at, and whether it is this taskcanvas's newest.

    Exit status: 0 shown; 1 the database failed; 2 the configuration cannot be used.
    """
    raise typer.Exit(current_command(data_dir=data_dir))


def upgrade_command(*, data_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Upgrade and print the revision reached; the exit status."""
    database = _database(environ, data_dir)
    if database is None:
        return EXIT_CONFIG
    try:
        before, after = asyncio.run(_upgrade(database))
    except StoreError as e:
        print_error(str(e))
        return EXIT_DATABASE
    if before == after:
        typer.echo(f"The database {database.display_url} is up to date: revision {after} (head).")
    else:
        start = f"revision {before}" if before else "an empty schema"
        typer.echo(f"Upgraded the database {database.display_url} from {start} to revision {after} (head).")
    return 0


def current_command(*, data_dir: Path | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Print the database's revision against the newest one; the exit status."""
    database = _database(environ, data_dir)
    if database is None:
        return EXIT_CONFIG
    head = migrations.head()
    if database.backend == "sqlite" and not Path(str(database.url.database)).exists():
        # Looking must not create the file (and its directory).
        typer.echo(f"No database yet at {database.url.database}: `taskcanvas db upgrade` creates it "
                   f"at revision {head}.")
        return 0
    try:
        revision = asyncio.run(_current(database))
    except StoreError as e:
        print_error(str(e))
        return EXIT_DATABASE
    if revision is None:
        typer.echo(f"The database {database.display_url} has no taskcanvas schema: run `taskcanvas db upgrade` "
                   f"(revision {head}).")
    elif revision == head:
        typer.echo(f"The database {database.display_url} is at revision {revision} (head).")
    else:
        typer.echo(f"The database {database.display_url} is at revision {revision}; this taskcanvas's newest is "
                   f"{head}: run `taskcanvas db upgrade`.")
    return 0


def _database(environ: Mapping[str, str] | None, data_dir: Path | None) -> Database | None:
    env = dict(os.environ if environ is None else environ)
    if data_dir is not None:
        env["TASKCANVAS_DATA_DIR"] = str(data_dir)
    try:
        return Database.from_settings(Settings.load(env))
    except (ConfigError, UnsupportedDatabase) as e:
        print_error(str(e))
        return None


async def _upgrade(database: Database) -> tuple[str | None, str]:
    try:
        before = await migrations.current(database)
        return before, await migrations.upgrade(database)
    finally:
        await database.dispose()


async def _current(database: Database) -> str | None:
    try:
        return await migrations.current(database)
    finally:
        await database.dispose()
