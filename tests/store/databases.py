"""Real databases for tests: a SQLite file per test; on PostgreSQL, a schema per test inside a
database created for the test session (and dropped after it).

PostgreSQL is ``TASKCANVAS_TEST_POSTGRES_URL`` (default: 127.0.0.1:5432, user ``postgres``,
database ``test``, trust auth). When it cannot be reached its tests are skipped with the
reason, unless ``CI=true``: then they fail, because CI must run the whole suite on both.

Import the fixtures into a ``conftest.py`` (``from tests.store.databases import ...``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy.engine import URL, make_url

from taskcanvas.store import Database
from taskcanvas.store.migrations import upgrade

POSTGRES_URL = os.environ.get("TASKCANVAS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")


def run_blocking(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion on a loop of its own (callers may be inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def admin(url: URL, *statements: str) -> None:
    connection = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[URL]:
    """A fresh, uniquely named PostgreSQL database for this test session."""
    server = make_url(POSTGRES_URL)
    name = f"taskcanvas_test_{uuid.uuid4().hex[:12]}"
    try:
        run_blocking(admin(server, f'CREATE DATABASE "{name}"'))
    except Exception as e:
        message = (f"PostgreSQL is not usable at {server.render_as_string(hide_password=True)} "
                   f"({type(e).__name__}: {e}); set TASKCANVAS_TEST_POSTGRES_URL or start it")
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must run the store tests on PostgreSQL", pytrace=False)
        pytest.skip(message)
    try:
        yield server.set(drivername="postgresql+asyncpg", database=name)
    finally:
        run_blocking(admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def open_database(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An empty database of ``backend``, disposed (and on PostgreSQL its schema dropped) afterwards."""
    if backend == "sqlite":
        database = Database(f"sqlite:///{tmp_path / 'taskcanvas.db'}")
        try:
            yield database
        finally:
            await database.dispose()
        return
    url: URL = request.getfixturevalue("postgres_url")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    await admin(url, f'CREATE SCHEMA "{schema}"')
    database = Database(url, engine_options={"connect_args": {"server_settings": {"search_path": schema},
                                                              "timeout": 10}})
    try:
        yield database
    finally:
        await database.dispose()
        await admin(url, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
async def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database with nothing in it, on each backend."""
    async for database in open_database(request.param, request, tmp_path):
        yield database


@pytest.fixture(params=BACKENDS)
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database upgraded to head by Alembic (so every test exercises the migrations), on each backend."""
    async for db in open_database(request.param, request, tmp_path):
        await upgrade(db)
        yield db
