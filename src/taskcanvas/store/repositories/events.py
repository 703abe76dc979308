"""Run events, read back after a sequence number (SSE ``Last-Event-ID`` replay).

Sequence numbers are per run, start at 1 and have no gaps. One writer numbers them: the
executor running the run, which stores them with the run's checkpoints (through the journal),
so the stored events are always a prefix of the run's. ``runs.last_seq`` is their count as of
the run's last end or pause; while the run executes, the events themselves say how far it got.
"""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import RunEvent


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def after(self, run_id: uuid.UUID, seq: int = 0, *, limit: int = 1000) -> list[RunEvent]:
        """The run's events with a sequence number above ``seq``, in order."""
        rows = await self._session.scalars(
            select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > seq)
            .order_by(RunEvent.seq).limit(limit))
        return list(rows)

    async def last_seq(self, run_id: uuid.UUID) -> int:
        """The sequence number of the run's last stored event (0 when it has none)."""
        return int(await self._session.scalar(select(func.max(RunEvent.seq)).where(RunEvent.run_id == run_id)) or 0)
