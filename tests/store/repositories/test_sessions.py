from __future__ import annotations

from taskcanvas.store import Database
from taskcanvas.store.repositories import SessionRepository
from tests.store.factories import make_world


async def test_sessions_of_a_task_and_of_an_agent(database: Database) -> None:
    world = await make_world(database)
    async with database.session() as s:
        sessions = SessionRepository(s)
        chat = await sessions.create(world.agent_id, user_id=world.user_id, name="chat",
                                     messages=[{"role": "assistant", "content": "Hi"}])
        await sessions.create(world.agent_id, name="anonymous")
    async with database.session() as s:
        sessions = SessionRepository(s)
        of_task = await sessions.for_task(world.task_id)
        assert of_task is not None and of_task.id == world.session_id
        assert [x.name for x in await sessions.find(world.agent_id)] == ["anonymous", "chat", ""]
        assert [x.id for x in await sessions.find(world.agent_id, user_id=world.user_id)] == [chat.id,
                                                                                              world.session_id]
        got = await sessions.get(chat.id)
        assert got is not None and got.messages == [{"role": "assistant", "content": "Hi"}]
        assert await sessions.delete(chat.id)
        assert await sessions.get(chat.id) is None
