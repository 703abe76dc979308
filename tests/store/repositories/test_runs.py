from __future__ import annotations

import pytest

from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.models import Run
from taskcanvas.store.repositories import RunRepository
from tests.store.factories import make_world


async def test_runs_are_numbered_per_session_and_record_how_they_ended(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        runs = RunRepository(s)
        second = await runs.create(world.session_id, task_id=world.task_id, query={"q": 1}, inputs={"a": 1})
        assert second.number == 2 and second.status == "queued"
        assert await runs.mark_started(second.id)
    async with database.session() as s:
        runs = RunRepository(s)
        assert [r.id for r in await runs.with_status("running")] == [second.id]
        assert [r.id for r in await runs.with_status("queued")] == [world.run_id]
        assert await runs.mark_finished(second.id, "failed", error="boom", error_component="llm:0")
        assert await runs.set_status(world.run_id, "cancelled")
        assert not await runs.set_status(second.session_id, "cancelled")
    async with database.session() as s:
        runs = RunRepository(s)
        latest = await runs.latest(world.session_id)
        assert latest is not None and latest.id == second.id
        assert (latest.status, latest.error, latest.error_component) == ("failed", "boom", "llm:0")
        assert latest.started_at is not None and latest.finished_at is not None
        assert latest.query == {"q": 1} and latest.inputs == {"a": 1}
        assert [r.number for r in await runs.for_session(world.session_id)] == [1, 2]


async def test_two_runs_cannot_take_the_same_number(database: Database) -> None:
    world = await make_world(database)
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            s.add(Run(session_id=world.session_id, number=1))
            await s.flush()
