"""Queries about runs: one turn of a session each, numbered 1, 2, ... within it."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import Run
from taskcanvas.store.models.types import utcnow


class RunRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, session_id: uuid.UUID, *, task_id: uuid.UUID | None = None, query: Any = None,
                     inputs: Mapping[str, Any] | None = None, status: str = "queued") -> Run:
        """The session's next run (a second writer racing for the same number gets a StoreConflict)."""
        last = await self._session.scalar(select(func.max(Run.number)).where(Run.session_id == session_id))
        run = Run(session_id=session_id, task_id=task_id, number=(last or 0) + 1, query=query,
                  inputs=dict(inputs or {}), status=status)
        self._session.add(run)
        await self._session.flush()
        return run

    async def get(self, run_id: uuid.UUID) -> Run | None:
        return await self._session.get(Run, run_id)

    async def latest(self, session_id: uuid.UUID) -> Run | None:
        return await self._session.scalar(
            select(Run).where(Run.session_id == session_id).order_by(Run.number.desc()).limit(1))

    async def for_session(self, session_id: uuid.UUID) -> list[Run]:
        """A session's runs in order."""
        return list(await self._session.scalars(
            select(Run).where(Run.session_id == session_id).order_by(Run.number)))

    async def with_status(self, status: str, *, limit: int = 100) -> list[Run]:
        """Runs in one status, oldest first (queued runs to dispatch, running ones to recover)."""
        return list(await self._session.scalars(
            select(Run).where(Run.status == status).order_by(Run.created_at, Run.id).limit(limit)))

    async def mark_started(self, run_id: uuid.UUID, *, now: datetime.datetime | None = None) -> bool:
        return await self._set(run_id, status="running", started_at=now or utcnow())

    async def mark_finished(self, run_id: uuid.UUID, status: str, *, error: str | None = None,
                            error_component: str | None = None, now: datetime.datetime | None = None) -> bool:
        """Record how a run ended (finished, waiting, failed, cancelled) and why it failed."""
        return await self._set(run_id, status=status, error=error, error_component=error_component,
                               finished_at=now or utcnow())

    async def set_status(self, run_id: uuid.UUID, status: str) -> bool:
        return await self._set(run_id, status=status)

    async def _set(self, run_id: uuid.UUID, **values: Any) -> bool:
        result = await self._session.execute(
            update(Run).where(Run.id == run_id).values(**values).execution_options(synchronize_session="fetch"))
        return bool(getattr(result, "rowcount", 0))
