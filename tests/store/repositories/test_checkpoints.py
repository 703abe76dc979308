"""Checkpoint rows, and pruning what a snapshot older than the retention covers."""

from __future__ import annotations

import datetime

import pytest

from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.models import CheckpointSnapshot
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import CheckpointRepository
from tests.store.factories import make_world

DAY = datetime.timedelta(days=1)


async def test_deltas_are_read_after_a_sequence_number(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        repo = CheckpointRepository(s)
        assert await repo.count(world.session_id) == (0, 0)
        await repo.add_snapshot(world.session_id, 1, {"version": 1}, status="started", run_id=world.run_id)
        for seq in (2, 3, 4):
            await repo.add_delta(world.session_id, seq, {"component_id": f"c{seq}"}, run_id=world.run_id)
        await repo.add_snapshot(world.session_id, 5, {"version": 1, "n": 5}, status="running")
    async with database.session() as s:
        repo = CheckpointRepository(s)
        assert [(d.seq, d.component_id) for d in await repo.deltas_after(world.session_id, 2)] == [(3, "c3"),
                                                                                                   (4, "c4")]
        latest = await repo.latest_snapshot(world.session_id)
        assert latest is not None and (latest.seq, latest.status, latest.state["n"]) == (5, "running", 5)
        assert await repo.count(world.session_id) == (3, 2)


async def test_a_sequence_number_is_used_once(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        await CheckpointRepository(s).add_delta(world.session_id, 1, {"component_id": "a"})
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await CheckpointRepository(s).add_delta(world.session_id, 1, {"component_id": "b"})


async def _snapshot_at(database: Database, session_id: object, seq: int, age: datetime.timedelta) -> None:
    async with database.session() as s:
        s.add(CheckpointSnapshot(session_id=session_id, seq=seq, state={"seq": seq}, created_at=utcnow() - age))


async def test_prune_keeps_the_newest_old_snapshot_and_what_follows_it(database: Database) -> None:
    world = await make_world(database)
    other = await make_world(database)
    for session in (world.session_id, other.session_id):
        await _snapshot_at(database, session, 1, 10 * DAY)
        async with database.session() as s:
            for seq in (2, 3):
                await CheckpointRepository(s).add_delta(session, seq, {"component_id": "x"})
        await _snapshot_at(database, session, 4, 8 * DAY)
        async with database.session() as s:
            for seq in (5, 6):
                await CheckpointRepository(s).add_delta(session, seq, {"component_id": "x"})
        await _snapshot_at(database, session, 7, 1 * DAY)
        async with database.session() as s:
            await CheckpointRepository(s).add_delta(session, 8, {"component_id": "x"})

    async with database.session() as s:
        repo = CheckpointRepository(s)
        assert await repo.prune(utcnow() - 30 * DAY, session_id=world.session_id) == 0
        # Seven days: the snapshot at 4 is the newest one that old; 1-3 go, 4 stays as the base.
        assert await repo.prune(utcnow() - 7 * DAY, session_id=world.session_id) == 2
    async with database.session() as s:
        repo = CheckpointRepository(s)
        assert await repo.count(world.session_id) == (3, 2)
        assert await repo.count(other.session_id) == (5, 3), "another session is not touched"
        assert [d.seq for d in await repo.deltas_after(world.session_id, 0)] == [5, 6, 8]
        # Every session at once, with no retention left: only the newest snapshot and what follows remain.
        assert await repo.prune(utcnow()) == 2 + 4
    async with database.session() as s:
        repo = CheckpointRepository(s)
        for session in (world.session_id, other.session_id):
            assert await repo.count(session) == (1, 1)
            latest = await repo.latest_snapshot(session)
            assert latest is not None and latest.seq == 7
