"""Alembic builds the schema the models describe, from nothing, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, select, text

from taskcanvas.store import Database, MigrationFailed
from taskcanvas.store.migrations import config, current, head, upgrade
from taskcanvas.store.models import Base, CheckpointDelta, RunEvent
from tests.store.factories import make_world


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_from_empty_builds_every_table(empty_database: Database) -> None:
    assert await current(empty_database) is None
    assert await upgrade(empty_database) == head()
    assert await current(empty_database) == head()
    async with empty_database.connect() as connection:
        tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


async def test_upgrading_twice_changes_nothing(empty_database: Database) -> None:
    first = await upgrade(empty_database)
    assert await upgrade(empty_database) == first
    async with empty_database.connect() as connection:
        versions = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    assert versions == [first]


async def test_the_migrated_schema_is_the_models_schema(database: Database) -> None:
    async with database.connect() as connection:
        assert await connection.run_sync(_differences) == []


async def test_the_comparison_would_see_a_difference(database: Database) -> None:
    """Guards the test above: a schema that drifted from the models is noticed."""
    async with database.connect() as connection:
        await connection.execute(text("DROP INDEX ix_tasks_status_created"))
        differences = await connection.run_sync(_differences)
    assert [d[0] for d in differences] == ["add_index"]


async def test_downgrade_to_nothing_and_back(database: Database) -> None:
    async with database.connect() as connection:
        await connection.run_sync(lambda c: command.downgrade(config(c), "base"))
        remaining = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    assert not remaining & set(Base.metadata.tables)
    assert await upgrade(database) == head()


async def test_an_unknown_revision_fails_clearly(empty_database: Database) -> None:
    with pytest.raises(MigrationFailed, match=r"upgrading the database .* failed \(it has no taskcanvas schema\)"):
        await upgrade(empty_database, "9999")


async def test_concurrent_upgrades_wait_for_each_other(empty_database: Database) -> None:
    """Two connections upgrading at once (two ``serve`` processes starting): one waits, then does nothing."""
    results = await asyncio.gather(*(upgrade(empty_database) for _ in range(3)))
    assert results == [head()] * 3


async def test_events_and_deltas_stored_before_0002_are_kept_in_their_clustered_tables(
        empty_database: Database) -> None:
    assert await upgrade(empty_database, "0001") == "0001"
    world = await make_world(empty_database)
    async with empty_database.session() as s:
        s.add(RunEvent(run_id=world.run_id, seq=1, name="workflow_started", payload={"event": "workflow_started"}))
        s.add(CheckpointDelta(session_id=world.session_id, seq=1, component_id="begin", delta={"outputs": {}}))
    assert await upgrade(empty_database) == head()
    async with empty_database.reading() as s:
        events = [(e.run_id, e.seq, e.payload) for e in await s.scalars(select(RunEvent))]
        deltas = [(d.session_id, d.component_id) for d in await s.scalars(select(CheckpointDelta))]
        if empty_database.backend == "sqlite":
            ddl = (await s.execute(text("SELECT sql FROM sqlite_master WHERE name IN "
                                        "('run_events', 'checkpoint_deltas')"))).scalars().all()
            assert len(ddl) == 2 and all(sql.rstrip().endswith("WITHOUT ROWID") for sql in ddl)
    assert events == [(world.run_id, 1, {"event": "workflow_started"})]
    assert deltas == [(world.session_id, "begin")]
