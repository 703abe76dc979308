"""Run events: appended in batches, read back after a sequence number (SSE ``Last-Event-ID`` replay).

Sequence numbers are per run, start at 1 and have no gaps. They are taken by incrementing
``runs.last_seq`` in the same transaction as the insert: the row lock (PostgreSQL) or the
write lock (SQLite) orders concurrent appenders, and a rolled-back batch gives its numbers back.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.errors import RecordNotFound
from taskcanvas.store.models import Run, RunEvent
from taskcanvas.store.models.types import utcnow


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def append(self, run_id: uuid.UUID, events: Sequence[Mapping[str, Any]]) -> list[int]:
        """Store ``events`` (the engine's dicts, ``{"event": name, ...}``) in order; their sequence numbers."""
        if not events:
            return []
        last = await self._session.scalar(
            update(Run).where(Run.id == run_id).values(last_seq=Run.last_seq + len(events))
            .returning(Run.last_seq).execution_options(synchronize_session=False))
        if last is None:
            raise RecordNotFound(f"cannot append events to run {run_id}: there is no such run")
        first = last - len(events) + 1
        now = utcnow()
        rows = [{"run_id": run_id, "seq": first + i, "name": str(event.get("event", "")), "payload": dict(event),
                 "created_at": now} for i, event in enumerate(events)]
        await self._session.execute(insert(RunEvent), rows)
        return list(range(first, last + 1))

    async def after(self, run_id: uuid.UUID, seq: int = 0, *, limit: int = 1000) -> list[RunEvent]:
        """The run's events with a sequence number above ``seq``, in order."""
        rows = await self._session.scalars(
            select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > seq)
            .order_by(RunEvent.seq).limit(limit))
        return list(rows)

    async def last_seq(self, run_id: uuid.UUID) -> int:
        """The sequence number of the run's last event (0 when it has none)."""
        return int(await self._session.scalar(select(Run.last_seq).where(Run.id == run_id)) or 0)
