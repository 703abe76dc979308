from __future__ import annotations

import pytest
from sqlalchemy import func, select

from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.models import CheckpointDelta, RunEvent, Session
from taskcanvas.store.repositories import (
    CheckpointRepository,
    OrganizationRepository,
    SessionRepository,
    TaskRepository,
)
from tests.store.factories import make_world


async def test_task_names_are_unique_per_owner(database: Database) -> None:
    world = await make_world(database)
    other = await make_world(database)
    async with database.session() as s:
        task = await TaskRepository(s).get(world.task_id)
        assert task is not None
        name = task.name
        # Another owner may use the same name.
        await TaskRepository(s).create(other.user_id, other.agent_id, other.version_id, name)
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await TaskRepository(s).create(world.user_id, world.agent_id, world.version_id, name)
    async with database.session() as s:
        found = await TaskRepository(s).by_name(world.user_id, name)
        assert found is not None and found.id == world.task_id and found.prompt == "hello"


async def test_tasks_are_listed_newest_first_by_owner_org_and_status(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        org = await OrganizationRepository(s).create("acme")
        tasks = TaskRepository(s)
        made = [await tasks.create(world.user_id, world.agent_id, world.version_id, f"t{i}",
                                   organization_id=org.id if i % 2 else None, status="active" if i < 3 else "paused")
                for i in range(5)]
    async with database.session() as s:
        tasks = TaskRepository(s)
        mine = await tasks.find(owner_id=world.user_id)
        assert [t.name for t in mine] == ["t4", "t3", "t2", "t1", "t0", mine[-1].name]
        assert [t.name for t in await tasks.find(organization_id=org.id)] == ["t3", "t1"]
        assert [t.name for t in await tasks.find(owner_id=world.user_id, status="paused")] == ["t4", "t3"]
        page = await tasks.find(owner_id=world.user_id, limit=2)
        rest = await tasks.find(owner_id=world.user_id, created_before=page[-1].created_at, limit=2)
        assert [t.name for t in page + rest] == ["t4", "t3", "t2", "t1"]
        assert await tasks.set_status(made[0].id, "error")
        refreshed = await tasks.get(made[0].id)
        assert refreshed is not None and refreshed.status == "error"


async def test_states_are_read_newest_first(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        tasks = TaskRepository(s)
        await tasks.add_state(world.task_id, "working", "Reading", run_id=world.run_id)
        await tasks.add_state(world.task_id, "idle", "Waiting for you", uri="https://example.com/form")
    async with database.session() as s:
        tasks = TaskRepository(s)
        latest = await tasks.latest_state(world.task_id)
        assert latest is not None and (latest.state, latest.uri) == ("idle", "https://example.com/form")
        assert [e.state for e in await tasks.states(world.task_id)] == ["idle", "working"]


async def test_deleting_a_task_takes_everything_it_ran(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        s.add(RunEvent(run_id=world.run_id, seq=1, name="workflow_started", payload={"event": "workflow_started"}))
        await CheckpointRepository(s).add_snapshot(world.session_id, 1, {"version": 1})
        await CheckpointRepository(s).add_delta(world.session_id, 2, {"component_id": "begin"})
        await TaskRepository(s).add_state(world.task_id, "working")
    async with database.session() as s:
        assert await TaskRepository(s).delete(world.task_id)
        assert not await TaskRepository(s).delete(world.task_id)
    async with database.session() as s:
        for model in (Session, RunEvent, CheckpointDelta):
            assert await s.scalar(select(func.count()).select_from(model)) == 0
        assert await SessionRepository(s).for_task(world.task_id) is None
