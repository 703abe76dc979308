"""Queries about tasks and the states they report."""

from __future__ import annotations

import datetime
import uuid

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import Task, TaskStateEntry
from taskcanvas.store.models.types import utcnow


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, owner_id: uuid.UUID, agent_id: uuid.UUID, agent_version_id: uuid.UUID, name: str, *,
                     prompt: str = "", display_name: str = "", organization_id: uuid.UUID | None = None,
                     preset_id: uuid.UUID | None = None, status: str = "pending") -> Task:
        task = Task(owner_id=owner_id, agent_id=agent_id, agent_version_id=agent_version_id, name=name,
                    prompt=prompt, display_name=display_name, organization_id=organization_id,
                    preset_id=preset_id, status=status)
        self._session.add(task)
        await self._session.flush()
        return task

    async def get(self, task_id: uuid.UUID) -> Task | None:
        return await self._session.get(Task, task_id)

    async def by_name(self, owner_id: uuid.UUID, name: str) -> Task | None:
        return await self._session.scalar(select(Task).where(Task.owner_id == owner_id, Task.name == name))

    async def find(self, *, owner_id: uuid.UUID | None = None, organization_id: uuid.UUID | None = None,
                   status: str | None = None, created_before: datetime.datetime | None = None,
                   limit: int = 50) -> list[Task]:
        """Tasks newest first; pass the last one's ``created_at`` as ``created_before`` for the next page."""
        query = select(Task)
        if owner_id is not None:
            query = query.where(Task.owner_id == owner_id)
        if organization_id is not None:
            query = query.where(Task.organization_id == organization_id)
        if status is not None:
            query = query.where(Task.status == status)
        if created_before is not None:
            query = query.where(Task.created_at < created_before)
        query = query.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit)
        return list(await self._session.scalars(query))

    async def set_status(self, task_id: uuid.UUID, status: str) -> bool:
        result = await self._session.execute(
            update(Task).where(Task.id == task_id).values(status=status, updated_at=utcnow())
            .execution_options(synchronize_session="fetch"))
        return bool(getattr(result, "rowcount", 0))

    async def delete(self, task_id: uuid.UUID) -> bool:
        """Delete a task with its session, runs, events, checkpoints and states."""
        result = await self._session.execute(delete(Task).where(Task.id == task_id))
        return bool(getattr(result, "rowcount", 0))

    # ------------------------------------------------------------------ states
    async def add_state(self, task_id: uuid.UUID, state: str, message: str = "", *,
                        run_id: uuid.UUID | None = None, uri: str | None = None) -> TaskStateEntry:
        entry = TaskStateEntry(task_id=task_id, state=state, message=message, run_id=run_id, uri=uri)
        self._session.add(entry)
        await self._session.flush()
        return entry

    async def latest_state(self, task_id: uuid.UUID) -> TaskStateEntry | None:
        return await self._session.scalar(
            select(TaskStateEntry).where(TaskStateEntry.task_id == task_id)
            .order_by(TaskStateEntry.created_at.desc(), TaskStateEntry.id.desc()).limit(1))

    async def states(self, task_id: uuid.UUID, *, limit: int = 100) -> list[TaskStateEntry]:
        """A task's reported states, newest first."""
        rows = await self._session.scalars(
            select(TaskStateEntry).where(TaskStateEntry.task_id == task_id)
            .order_by(TaskStateEntry.created_at.desc(), TaskStateEntry.id.desc()).limit(limit))
        return list(rows)
