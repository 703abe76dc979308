"""Rows tests need before they can test something else: a user with an agent, a task, its session and a run."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from taskcanvas.store import Database
from taskcanvas.store.repositories import (
    AgentRepository,
    RunRepository,
    SessionRepository,
    TaskRepository,
    UserRepository,
)

DSL: dict[str, Any] = {"components": {"begin": {"obj": {"component_name": "Begin", "params": {}},
                                                "downstream": [], "upstream": []}}}


@dataclass(frozen=True)
class World:
    user_id: uuid.UUID
    agent_id: uuid.UUID
    version_id: uuid.UUID
    task_id: uuid.UUID
    session_id: uuid.UUID
    run_id: uuid.UUID


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def make_world(database: Database, *, username: str | None = None) -> World:
    """A user, an agent with one version, a task, the task's session and its first run."""
    async with database.session() as s:
        user = await UserRepository(s).create(username or unique("user"))
        agents = AgentRepository(s)
        agent = await agents.create(user.id, unique("agent"), DSL)
        version = await agents.add_version(agent.id, DSL)
        task = await TaskRepository(s).create(user.id, agent.id, version.id, unique("task"), prompt="hello")
        session = await SessionRepository(s).create(agent.id, task_id=task.id, agent_version_id=version.id,
                                                    user_id=user.id)
        run = await RunRepository(s).create(session.id, task_id=task.id, query="hello")
    return World(user.id, agent.id, version.id, task.id, session.id, run.id)
