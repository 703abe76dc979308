"""Events of a run, as the executor stores them (journal entries): reading resumes after a number."""

from __future__ import annotations

import pytest

from taskcanvas.store import Database, StoreError
from taskcanvas.store.journal import Entry
from taskcanvas.store.models import RunEvent
from taskcanvas.store.models.types import new_id, utcnow
from taskcanvas.store.repositories import EventRepository, RunRepository
from tests.store.factories import make_world


def _events(*names: str) -> list[dict[str, object]]:
    return [{"event": name, "message_id": "m", "created_at": 1, "task_id": "t", "data": {"n": i}}
            for i, name in enumerate(names)]


async def _store(database: Database, run_id: object, first: int, *names: str) -> None:
    entry = Entry()
    for i, event in enumerate(_events(*names)):
        entry.insert(RunEvent, run_id=run_id, seq=first + i, name=str(event["event"]), payload=event,
                     created_at=utcnow())
    await database.journal.write(entry)


async def test_reading_resumes_after_a_number(database: Database) -> None:
    world = await make_world(database)
    async with database.reading() as s:
        assert await EventRepository(s).last_seq(world.run_id) == 0
    await _store(database, world.run_id, 1, "workflow_started", "node_started")
    await _store(database, world.run_id, 3, "node_finished", "message", "message_end")
    async with database.reading() as s:
        events = EventRepository(s)
        replay = await events.after(world.run_id, 2)
        assert [(e.seq, e.name) for e in replay] == [(3, "node_finished"), (4, "message"), (5, "message_end")]
        assert replay[0].payload == _events("node_finished")[0]
        assert [e.seq for e in await events.after(world.run_id, limit=2)] == [1, 2]
        assert await events.after(world.run_id, 5) == []
        assert await events.last_seq(world.run_id) == 5


async def test_sequences_are_per_run(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        other = await RunRepository(s).create(world.session_id)
    await _store(database, world.run_id, 1, "a", "b")
    await _store(database, other.id, 1, "c")
    async with database.reading() as s:
        assert await EventRepository(s).last_seq(world.run_id) == 2
        assert [e.name for e in await EventRepository(s).after(other.id)] == ["c"]


async def test_a_number_is_stored_once(database: Database) -> None:
    world = await make_world(database)
    await _store(database, world.run_id, 1, "a", "b")
    with pytest.raises(StoreError):
        await _store(database, world.run_id, 2, "again")
    async with database.reading() as s:
        assert [e.name for e in await EventRepository(s).after(world.run_id)] == ["a", "b"]


async def test_events_of_a_missing_run_are_refused(database: Database) -> None:
    with pytest.raises(StoreError):
        await _store(database, new_id(), 1, "a")
