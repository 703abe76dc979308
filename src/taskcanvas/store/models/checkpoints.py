"""A session's checkpoints: the delta of every finished component, and periodic snapshots.

Both share one per-session counter, ``seq``: a snapshot at ``seq`` holds the state after
every delta below it, so a state is the newest snapshot plus the deltas after it
(``store/checkpoints.py``). ``run_id`` records which run wrote the row; it is not a foreign
key, so this high-volume table carries no index for it and deleting a run scans nothing here
(rows go with their session).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import ForeignKey, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from taskcanvas.store.models.base import Base
from taskcanvas.store.models.types import utcnow


class CheckpointDelta(Base):
    __tablename__ = "checkpoint_deltas"
    # Clustered on the key it is written and read by (migration 0002): one B-tree per insert on SQLite.
    __table_args__ = (PrimaryKeyConstraint("session_id", "seq"), {"sqlite_with_rowid": False})

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    seq: Mapped[int]
    run_id: Mapped[uuid.UUID | None]
    component_id: Mapped[str] = mapped_column(String(255), default="")
    delta: Mapped[dict[str, Any]]
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class CheckpointSnapshot(Base):
    __tablename__ = "checkpoint_snapshots"
    __table_args__ = (PrimaryKeyConstraint("session_id", "seq"),)

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    seq: Mapped[int]
    run_id: Mapped[uuid.UUID | None]
    status: Mapped[str] = mapped_column(String(32), default="")
    state: Mapped[dict[str, Any]]
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)
