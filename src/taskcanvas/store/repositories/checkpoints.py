"""Queries about checkpoints: deltas and snapshots of a session, and pruning covered ones.

``SqlCheckpointSink`` (``store/checkpoints.py``) decides what to write; this module only
reads and writes rows. A snapshot at ``seq`` covers every delta below it.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import CheckpointDelta, CheckpointSnapshot


class CheckpointRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def add_delta(self, session_id: uuid.UUID, seq: int, delta: Mapping[str, Any], *,
                        run_id: uuid.UUID | None = None) -> None:
        self._session.add(CheckpointDelta(session_id=session_id, seq=seq, run_id=run_id, delta=dict(delta),
                                          component_id=str(delta.get("component_id", ""))))
        await self._session.flush()

    async def add_snapshot(self, session_id: uuid.UUID, seq: int, state: Mapping[str, Any], *,
                           status: str = "", run_id: uuid.UUID | None = None) -> None:
        self._session.add(CheckpointSnapshot(session_id=session_id, seq=seq, run_id=run_id, state=dict(state),
                                             status=status))
        await self._session.flush()

    async def latest_snapshot(self, session_id: uuid.UUID) -> CheckpointSnapshot | None:
        return await self._session.scalar(
            select(CheckpointSnapshot).where(CheckpointSnapshot.session_id == session_id)
            .order_by(CheckpointSnapshot.seq.desc()).limit(1))

    async def deltas_after(self, session_id: uuid.UUID, seq: int) -> list[CheckpointDelta]:
        """The session's deltas above ``seq``, in order."""
        rows = await self._session.scalars(
            select(CheckpointDelta).where(CheckpointDelta.session_id == session_id, CheckpointDelta.seq > seq)
            .order_by(CheckpointDelta.seq))
        return list(rows)

    async def count(self, session_id: uuid.UUID) -> tuple[int, int]:
        """How many deltas and snapshots the session keeps."""
        deltas = await self._session.scalar(
            select(func.count()).select_from(CheckpointDelta).where(CheckpointDelta.session_id == session_id))
        snapshots = await self._session.scalar(
            select(func.count()).select_from(CheckpointSnapshot).where(CheckpointSnapshot.session_id == session_id))
        return int(deltas or 0), int(snapshots or 0)

    async def prune(self, before: datetime.datetime, *, session_id: uuid.UUID | None = None) -> int:
        """Delete what the newest snapshot taken before ``before`` covers; how many deltas went.

        Per session, that snapshot stays (it is the base a state is rebuilt from); the deltas
        and snapshots below it go. Without ``session_id``, every session is pruned.
        """
        covered_by = _cut(CheckpointDelta.session_id, before)
        deltas = delete(CheckpointDelta).where(CheckpointDelta.seq < covered_by)
        snapshots = delete(CheckpointSnapshot).where(
            CheckpointSnapshot.seq < _cut(CheckpointSnapshot.session_id, before))
        if session_id is not None:
            deltas = deltas.where(CheckpointDelta.session_id == session_id)
            snapshots = snapshots.where(CheckpointSnapshot.session_id == session_id)
        result = await self._session.execute(deltas.execution_options(synchronize_session=False))
        await self._session.execute(snapshots.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


def _cut(session_column: Any, before: datetime.datetime) -> Any:
    """The seq of the session's newest snapshot taken at or before ``before`` (NULL: nothing to prune)."""
    base = CheckpointSnapshot.__table__.alias("base")
    return (select(func.max(base.c.seq))
            .where(and_(base.c.session_id == session_column, base.c.created_at <= before))
            .scalar_subquery())
