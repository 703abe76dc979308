"""Timestamps, ids and JSON behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from taskcanvas.store import Database
from taskcanvas.store.models import AuditEntry, Run
from taskcanvas.store.models.types import new_id
from taskcanvas.store.repositories import AuditRepository
from tests.store.factories import make_world

PLUS_TWO = datetime.timezone(datetime.timedelta(hours=2))


async def test_timestamps_come_back_aware_and_in_utc(database: Database) -> None:
    world = await make_world(database)
    started = datetime.datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=PLUS_TWO)
    async with database.session() as s:
        run = await s.get(Run, world.run_id)
        assert run is not None
        run.started_at = started
    async with database.session() as s:
        value = await s.scalar(select(Run.started_at).where(Run.id == world.run_id))
        created = await s.scalar(select(Run.created_at).where(Run.id == world.run_id))
    assert value == started
    assert value is not None and value.utcoffset() == datetime.timedelta(0)
    assert created is not None and created.tzinfo is not None


async def test_timestamps_compare_across_zones(database: Database) -> None:
    async with database.session() as s:
        await AuditRepository(s).record("test", "thing")
    later_elsewhere = datetime.datetime.now(PLUS_TWO) + datetime.timedelta(minutes=1)
    async with database.session() as s:
        assert await AuditRepository(s).find(before=later_elsewhere)
        assert not await AuditRepository(s).find(before=later_elsewhere - datetime.timedelta(hours=1))


async def test_a_naive_timestamp_is_refused(database: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        async with database.session() as s:
            await AuditRepository(s).find(before=datetime.datetime(2026, 1, 1))


async def test_json_round_trips_and_none_is_null(database: Database) -> None:
    details = {"text": "naïve ☃", "nested": {"list": [1, 2.5, None, True]}, "empty": {}}
    run_world = await make_world(database)
    async with database.session() as s:
        entry = await AuditRepository(s).record("test", "thing", details=details)
    async with database.session() as s:
        assert await s.scalar(select(AuditEntry.details).where(AuditEntry.id == entry.id)) == details
        assert await s.scalar(select(Run.id).where(Run.id == run_world.run_id, Run.query.is_not(None)))
        run = await s.get(Run, run_world.run_id)
        assert run is not None
        run.query = None
    async with database.session() as s:
        assert await s.scalar(select(Run.id).where(Run.id == run_world.run_id, Run.query.is_(None)))


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(2000)]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids), "strictly increasing, within a millisecond too"
