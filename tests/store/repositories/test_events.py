"""Events of a run: batches take the next sequence numbers; reading resumes after one."""

from __future__ import annotations

import asyncio

import pytest

from taskcanvas.store import Database, RecordNotFound
from taskcanvas.store.models.types import new_id
from taskcanvas.store.repositories import EventRepository, RunRepository
from tests.store.factories import make_world


def _events(*names: str) -> list[dict[str, object]]:
    return [{"event": name, "message_id": "m", "created_at": 1, "task_id": "t", "data": {"n": i}}
            for i, name in enumerate(names)]


async def test_batches_take_consecutive_numbers_and_replay_after_one(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        events = EventRepository(s)
        assert await events.append(world.run_id, _events("workflow_started", "node_started")) == [1, 2]
        assert await events.append(world.run_id, []) == []
    async with database.session() as s:
        assert await EventRepository(s).append(world.run_id, _events("node_finished", "message", "message_end")) \
            == [3, 4, 5]
    async with database.session() as s:
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
        events = EventRepository(s)
        await events.append(world.run_id, _events("a", "b"))
        assert await events.append(other.id, _events("c")) == [1]


async def test_concurrent_appenders_never_share_a_number(database: Database) -> None:
    world = await make_world(database)

    async def append(n: int) -> list[int]:
        async with database.session() as s:
            return await EventRepository(s).append(world.run_id, _events(*["message"] * n))

    results = await asyncio.gather(*(append(n) for n in (3, 1, 4, 1, 5)))
    numbers = sorted(seq for batch in results for seq in batch)
    assert numbers == list(range(1, 15))
    assert all(batch == list(range(batch[0], batch[0] + len(batch))) for batch in results)


async def test_a_rolled_back_batch_gives_its_numbers_back(database: Database) -> None:
    world = await make_world(database)
    with pytest.raises(RuntimeError):
        async with database.session() as s:
            await EventRepository(s).append(world.run_id, _events("a", "b"))
            raise RuntimeError("the publisher failed")
    async with database.session() as s:
        assert await EventRepository(s).append(world.run_id, _events("a")) == [1]


async def test_appending_to_a_missing_run_says_so(database: Database) -> None:
    missing = new_id()
    with pytest.raises(RecordNotFound, match=f"run {missing}"):
        async with database.session() as s:
            await EventRepository(s).append(missing, _events("a"))
