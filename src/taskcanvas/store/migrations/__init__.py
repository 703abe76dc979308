"""The schema's history as Alembic revisions, run from inside the package.

Alembic is configured in code (no ``alembic.ini``), so an installed taskcanvas upgrades its
database the same way a checkout does: ``taskcanvas db upgrade``, and ``taskcanvas serve``
on start. Concurrent upgrades (several ``serve`` processes starting together) wait for each
other instead of colliding: an advisory lock on PostgreSQL, an immediate (write) transaction
on SQLite.

A new revision, from a checkout with a database at head::

    python -c "from taskcanvas.store.migrations import revision; revision('what changed', 'sqlite:///dev.db')"
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from taskcanvas.store.db import Database
from taskcanvas.store.errors import MigrationFailed, StoreError

_HERE = Path(__file__).resolve().parent
_LOCK_KEY = 0x7461736B63616E76  # "taskcanv": one advisory lock for schema changes


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for taskcanvas's scripts, with ``connection`` to run on."""
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "v%%(rev)s_%%(slug)s")
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this taskcanvas knows."""
    current = ScriptDirectory.from_config(config()).get_current_head()
    if current is None:  # pragma: no cover - the package always ships its revisions
        raise MigrationFailed("taskcanvas's migration scripts are missing")
    return current


async def current(database: Database) -> str | None:
    """The revision the database is at; ``None`` when it has no taskcanvas schema."""
    async with database.connect() as connection:
        return await connection.run_sync(_current)


async def upgrade(database: Database, revision: str = "head") -> str:
    """Bring the schema up to ``revision`` (head by default); the revision it is at afterwards.

    Running it on an up-to-date database changes nothing.
    """
    try:
        async with database.connect() as connection:
            await connection.run_sync(_upgrade, revision)
    except StoreError:
        raise
    except Exception as e:
        reached = await _current_or_none(database)
        at = f"it is at revision {reached}" if reached else "it has no taskcanvas schema"
        raise MigrationFailed(f"upgrading the database {database.display_url} failed ({at}): "
                              f"{type(e).__name__}: {e}") from e
    return await current(database) or ""


def revision(message: str, database_url: str) -> None:  # pragma: no cover - a developer's tool
    """Autogenerate a revision from the models against a database at head."""

    async def _run() -> None:
        async with Database(database_url) as database, database.connect() as connection:
            await connection.run_sync(lambda c: command.revision(config(c), message, autogenerate=True))

    asyncio.run(_run())


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection, revision: str) -> None:
    # Whoever upgrades second waits here, then finds the schema at head and does nothing.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    command.upgrade(config(connection), revision)


async def _current_or_none(database: Database) -> str | None:
    try:
        return await current(database)
    except Exception:
        return None
