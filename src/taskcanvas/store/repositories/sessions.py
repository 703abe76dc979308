"""Queries about sessions: a task's conversation, or one of ragflow's agent conversations."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import Session


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, agent_id: uuid.UUID, *, task_id: uuid.UUID | None = None,
                     agent_version_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None,
                     name: str = "", messages: Sequence[Any] = ()) -> Session:
        row = Session(agent_id=agent_id, task_id=task_id, agent_version_id=agent_version_id, user_id=user_id,
                      name=name, messages=list(messages))
        self._session.add(row)
        await self._session.flush()
        return row

    async def get(self, session_id: uuid.UUID) -> Session | None:
        return await self._session.get(Session, session_id)

    async def for_task(self, task_id: uuid.UUID) -> Session | None:
        return await self._session.scalar(select(Session).where(Session.task_id == task_id))

    async def find(self, agent_id: uuid.UUID, *, user_id: uuid.UUID | None = None, limit: int = 50,
                   offset: int = 0) -> list[Session]:
        """An agent's sessions, newest first."""
        query = select(Session).where(Session.agent_id == agent_id)
        if user_id is not None:
            query = query.where(Session.user_id == user_id)
        query = query.order_by(Session.created_at.desc(), Session.id.desc()).limit(limit).offset(offset)
        return list(await self._session.scalars(query))

    async def delete(self, session_id: uuid.UUID) -> bool:
        result = await self._session.execute(delete(Session).where(Session.id == session_id))
        return bool(getattr(result, "rowcount", 0))
