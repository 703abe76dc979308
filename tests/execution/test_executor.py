"""The embedded executor through the service layer: pause and resume, shutdown and restart,
cancel, reading a run's events from any point, idle sessions holding nothing."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from taskcanvas.execution import follow
from taskcanvas.service.auth import Principal
from taskcanvas.service.services import Services, open_services
from taskcanvas.store.checkpoints import restore
from taskcanvas.store.models import CheckpointDelta, CheckpointSnapshot, Run, Session, TaskStateEntry
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import EventRepository, RunRepository
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.store.databases import BACKENDS
from tests.support.canvas import cpn, make_canvas
from tests.support.server import postgres_database_url, settings_for

__all__ = ["postgres_database_url"]

STEPS = 4


def _chain() -> dict[str, Any]:
    components: dict[str, Any] = {"begin": cpn("Begin", down=["step1"])}
    for n in range(1, STEPS + 1):
        components[f"step{n}"] = cpn("LLM", {"llm_id": "slow@OpenAI",
                                           "prompts": [{"role": "user", "content": f"step {n}: {{sys.query}}"}]},
                                     down=[f"step{n + 1}" if n < STEPS else "answer"])
    components["answer"] = cpn("Message", {"content": [f"{{step{STEPS}@content}}"]})
    return make_canvas(components)


@pytest.fixture
def model() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer([Rule(Reply(text="ok", delay=0.3))]) as server:
        yield server


class World:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.services: Services | None = None
        self.owner: Principal | None = None
        self.version_id: uuid.UUID | None = None

    async def open(self) -> Services:
        self.services = await open_services(self.settings)
        return self.services

    async def close(self) -> None:
        if self.services is not None:
            await self.services.close()
            self.services = None


@pytest.fixture(params=BACKENDS)
async def world(request: pytest.FixtureRequest, tmp_path: Path, model: ScriptedModelServer) -> AsyncIterator[World]:
    env = {"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "test"}
    if request.param == "postgresql":
        env["TASKCANVAS_DATABASE_URL"] = request.getfixturevalue("postgres_database_url")
    w = World(settings_for(tmp_path / "data", env))
    services = await w.open()
    user = await services.accounts.create_user("ada", email="ada@example.com", role="owner")
    w.owner = await services.accounts.principal_for(user.id)
    w.version_id = (await services.agents.create(w.owner, "chain", _chain())).version.id
    yield w
    await w.close()


async def _until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():
            await asyncio.sleep(0.02)


async def _events(services: Services, run_id: uuid.UUID) -> list[dict[str, Any]]:
    async with services.database.session() as s:
        return [row.payload for row in await EventRepository(s).after(run_id, 0, limit=10_000)]


def _finished(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["component_id"] for e in events if e["event"] == "node_finished"]


async def test_pause_stops_after_a_component_and_resume_goes_on(world: World, model: ScriptedModelServer) -> None:
    services = world.services
    assert services is not None and world.owner is not None
    view = await services.tasks.create(world.owner, "me", world.version_id, prompt="go")
    run = view.latest_run
    assert run is not None
    await _until(lambda: _asked(model, 2))
    await services.tasks.pause(world.owner, await services.tasks.get_by_id(world.owner, view.task.id))
    await services.executor.wait(run.id)
    paused = await services.tasks.get_by_id(world.owner, view.task.id)
    assert paused.status == "paused"
    asked = len(model.requests)
    await asyncio.sleep(0.5)
    assert len(model.requests) == asked, "a paused task asks nothing more"

    await services.tasks.resume(world.owner, paused)
    await services.executor.wait(run.id)
    done = await services.tasks.get_by_id(world.owner, view.task.id)
    assert done.status == "active" and done.current_state is not None
    assert done.current_state.state == "complete"
    assert done.current_state.message == "ok", "the answer counts what ran before the pause too"
    logs = await services.tasks.logs(world.owner, done)
    assert [(e.type, e.content) for e in logs.entries] == [("input", "go"), ("output", "ok")]
    events = await _events(services, run.id)
    assert sorted(_finished(events)) == sorted(["begin", *(f"step{n}" for n in range(1, STEPS + 1)), "answer"])
    assert len(model.requests) == STEPS, "the pause waited for its component: nothing asked twice"


async def test_a_shutdown_mid_run_resumes_on_the_next_start(world: World, model: ScriptedModelServer) -> None:
    services = world.services
    assert services is not None and world.owner is not None
    view = await services.tasks.create(world.owner, "me", world.version_id, prompt="go")
    await _until(lambda: _asked(model, 2))
    await world.close()
    services = await world.open()
    run_id = view.latest_run.id if view.latest_run else None
    assert run_id is not None
    await services.executor.wait(run_id)
    done = await services.tasks.get_by_id(world.owner, view.task.id)
    assert done.current_state is not None and done.current_state.state == "complete"
    events = await _events(services, run_id)
    assert _finished(events).count("step1") == 1 and _finished(events).count(f"step{STEPS}") == 1
    assert [e["event"] for e in events].count("workflow_started") == 1


async def test_cancel_ends_the_run_and_the_task_reports_it(world: World, model: ScriptedModelServer) -> None:
    services = world.services
    assert services is not None and world.owner is not None
    view = await services.tasks.create(world.owner, "me", world.version_id, prompt="go")
    assert view.latest_run is not None
    await _until(lambda: _asked(model, 1))
    assert services.executor.cancel(view.latest_run.id, "stop please")
    await services.executor.wait(view.latest_run.id)
    after = await services.tasks.get_by_id(world.owner, view.task.id)
    assert after.latest_run is not None and after.latest_run.status == "cancelled"
    assert after.current_state is not None and after.current_state.state == "failed"
    assert "stop please" in after.current_state.message


async def test_follow_reads_from_any_point_without_gaps(world: World) -> None:
    services = world.services
    assert services is not None and world.owner is not None
    view = await services.tasks.create(world.owner, "me", world.version_id, prompt="go")
    run = view.latest_run
    assert run is not None and view.session is not None
    seen = [seq async for seq, _ in follow(services.database, services.hub, run.id, view.session.id)]
    assert seen == list(range(1, len(seen) + 1))
    later = [seq async for seq, _ in follow(services.database, services.hub, run.id, view.session.id, after=5)]
    assert later == seen[5:]
    async with services.database.session() as s:
        stored = await RunRepository(s).get(run.id)
    assert stored is not None and stored.last_seq == len(seen)


async def test_a_waiting_session_holds_no_worker(tmp_path: Path) -> None:
    services = await open_services(settings_for(tmp_path / "data"))
    try:
        user = await services.accounts.create_user("ada", email="ada@example.com", role="owner")
        owner = await services.accounts.principal_for(user.id)
        form = make_canvas({
            "begin": cpn("Begin", down=["ask"]),
            "ask": cpn("UserFillUp", {"enable_tips": True, "tips": "Name?",
                                      "inputs": {"name": {"type": "line", "name": "Name"}}}, down=["hi"]),
            "hi": cpn("Message", {"content": ["Hi {ask@name}"]}),
        })
        version = (await services.agents.create(owner, "form", form)).version
        view = await services.tasks.create(owner, "me", version.id, prompt="hello")
        assert view.latest_run is not None
        await services.executor.wait(view.latest_run.id)
        idle = await services.tasks.get_by_id(owner, view.task.id)
        assert idle.current_state is not None and idle.current_state.state == "idle"
        assert services.executor.executing == 0
        run = await services.tasks.send(owner, idle, "Grace")
        await services.executor.wait(run.id)
        done = await services.tasks.get_by_id(owner, view.task.id)
        assert done.current_state is not None and done.current_state.message == "Hi Grace"
    finally:
        await services.close()


async def _asked(model: ScriptedModelServer, n: int) -> bool:
    return len(model.requests) >= n


async def test_a_start_prunes_checkpoints_past_the_retention(world: World) -> None:
    """Checkpoints a run wrote long ago are pruned by the executor's housekeeping on the next start."""
    services = world.services
    assert services is not None and world.owner is not None
    view = await services.tasks.create(world.owner, "me", world.version_id, prompt="old")
    await services.executor.wait(view.latest_run.id)
    session_id = view.session.id
    # Age every checkpoint of the session by 30 days (past the default 7-day retention).
    assert await _deltas(services, session_id) > 0
    async with services.database.session() as s:
        await s.execute(update(CheckpointDelta).where(CheckpointDelta.session_id == session_id)
                        .values(created_at=utcnow() - datetime.timedelta(days=30)))
        await s.execute(update(CheckpointSnapshot).where(CheckpointSnapshot.session_id == session_id)
                        .values(created_at=utcnow() - datetime.timedelta(days=30)))
    before = await restore(services.database, session_id)
    await world.close()

    await world.open()
    services = world.services
    assert services is not None

    async def pruned() -> bool:
        return await _deltas(services, session_id) == 0

    await _until(pruned)
    after = await restore(services.database, session_id)
    assert before is not None and after is not None
    assert after.state == before.state, "the newest snapshot stays: the session's state is unchanged"


async def _deltas(services: Services, session_id: uuid.UUID) -> int:
    async with services.database.reading() as s:
        return int(await s.scalar(select(func.count()).select_from(CheckpointDelta)
                                  .where(CheckpointDelta.session_id == session_id)) or 0)


async def test_a_run_whose_canvas_cannot_start_fails_with_the_reason(world: World) -> None:
    """A canvas that names a knowledge base nobody configured: the run ends failed at once, the
    reason in its terminal event, the task's state and the run's error."""
    services = world.services
    assert services is not None and world.owner is not None
    canvas = make_canvas({
        "begin": cpn("Begin", down=["find"]),
        "find": cpn("Retrieval", {"dataset_ids": ["ghost-kb"], "query": "{sys.query}"}, down=["say"]),
        "say": cpn("Message", {"content": ["{find@formalized_content}"]}),
    })
    version_id = (await services.agents.create(world.owner, "ghost", canvas)).version.id
    view = await services.tasks.create(world.owner, "me", version_id, prompt="hello")
    await services.executor.wait(view.latest_run.id)

    run = await services.sessions.run(view.latest_run.id)
    assert run is not None and run.status == "failed"
    assert "ghost-kb" in (run.error or "")
    events = await _events(services, run.id)
    assert [e["event"] for e in events] == ["workflow_finished"]
    assert events[0]["data"]["status"] == "failed" and events[0]["data"]["error"] == run.error
    assert run.last_seq == 1
    task = await services.tasks.get_by_id(world.owner, view.task.id)
    assert task.current_state is not None and task.current_state.state == "failed"
    assert "ghost-kb" in task.current_state.message


async def test_a_run_stopped_between_its_last_checkpoint_and_its_ending_is_not_run_again(
        world: World, model: ScriptedModelServer) -> None:
    """The turn's last checkpoint (with ``workflow_finished``) is stored, the run's ending is not, as
    a store written before the two shared a commit holds when the process was killed between them:
    the next start ends the run from what is stored instead of running the turn again."""
    services = world.services
    assert services is not None and world.owner is not None
    view = await services.tasks.create(world.owner, "me", world.version_id, prompt="go")
    assert view.latest_run is not None and view.session is not None
    run_id, session_id, task_id = view.latest_run.id, view.session.id, view.task.id
    await services.executor.wait(run_id)
    events = await _events(services, run_id)
    async with services.database.session() as s:  # the ending undone
        await s.execute(update(Run).where(Run.id == run_id).values(status="running", finished_at=None))
        await s.execute(update(Session).where(Session.id == session_id).values(messages=[]))
        await s.execute(delete(TaskStateEntry).where(TaskStateEntry.task_id == task_id))
    asked = len(model.requests)
    await world.close()

    services = await world.open()
    await _until(lambda: _run_status(services, run_id, "finished"))
    assert len(model.requests) == asked, "no component ran again"
    assert await _events(services, run_id) == events, "no event added"
    done = await services.tasks.get_by_id(world.owner, task_id)
    assert done.current_state is not None
    assert (done.current_state.state, done.current_state.message) == ("complete", "ok")
    logs = await services.tasks.logs(world.owner, done)
    assert [(e.type, e.content) for e in logs.entries] == [("input", "go"), ("output", "ok")]


async def _run_status(services: Services, run_id: uuid.UUID, status: str) -> bool:
    run = await services.sessions.run(run_id)
    return run is not None and run.status == status
