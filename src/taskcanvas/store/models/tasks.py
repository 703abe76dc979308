"""A task and everything it runs: its session, the session's runs, their events, its states.

Task → one Session (conversation + canvas state between turns; a session may also exist
without a task, for ragflow's agent API) → Runs (one per turn) → RunEvents (ordered by a
per-run ``seq``). TaskStateEntries record what the task reported (working / idle /
complete / failed + message), newest last.

Status columns are plain strings: the values are the service's vocabulary, and a new one
must not need a migration.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import ForeignKey, Index, PrimaryKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from taskcanvas.store.models.base import Base, CreatedMixin, IdMixin, TimestampsMixin
from taskcanvas.store.models.types import JSONType, utcnow


class Task(IdMixin, TimestampsMixin, Base):
    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("owner_id", "name"),
        Index("ix_tasks_owner_created", "owner_id", "created_at"),
        Index("ix_tasks_organization_created", "organization_id", "created_at"),
        Index("ix_tasks_status_created", "status", "created_at"),
    )

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("organizations.id", ondelete="RESTRICT"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="RESTRICT"), index=True)
    agent_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agent_versions.id", ondelete="RESTRICT"), index=True)
    preset_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("presets.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255), default="")
    prompt: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32), default="pending")
    deleted_at: Mapped[datetime.datetime | None]
    """Set by a delete: the task is gone from every read at once; its rows are removed later."""

    session: Mapped[Session | None] = relationship(back_populates="task", lazy="raise", passive_deletes=True)


class Session(IdMixin, TimestampsMixin, Base):
    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_agent_created", "agent_id", "created_at"),)

    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), unique=True)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    agent_version_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agent_versions.id", ondelete="SET NULL"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(String(16), default="task")
    """``task``; for ragflow's API ``agent`` (made by POST /sessions) or ``workflow`` (by a completion)."""
    external_user: Mapped[str | None] = mapped_column(String(255))
    """ragflow's free-text ``user_id`` of the person chatting (not an account)."""
    messages: Mapped[list[Any]] = mapped_column(default=list)
    references: Mapped[list[Any]] = mapped_column(default=list)

    task: Mapped[Task | None] = relationship(back_populates="session", lazy="raise")
    runs: Mapped[list[Run]] = relationship(
        back_populates="session", lazy="raise", order_by="Run.number", passive_deletes=True)


class Run(IdMixin, CreatedMixin, Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("session_id", "number"),
        Index("ix_runs_status_created", "status", "created_at"),
    )

    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    task_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(32), default="queued")
    message_id: Mapped[str] = mapped_column(String(32), default="")
    """The id the engine gave this run's events (ragflow's ``message_id``)."""
    query: Mapped[Any | None] = mapped_column(JSONType)
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    error_component: Mapped[str | None] = mapped_column(String(255))
    last_seq: Mapped[int] = mapped_column(default=0)
    """How many events this run stored, as of its end or its last pause (while it executes, its
    stored events say how far it got: ``EventRepository.last_seq``)."""
    started_at: Mapped[datetime.datetime | None]
    finished_at: Mapped[datetime.datetime | None]

    session: Mapped[Session] = relationship(back_populates="runs", lazy="raise")


class RunEvent(Base):
    """One event of a run, addressed by ``(run_id, seq)``: the SSE id a client resumes after."""

    __tablename__ = "run_events"
    # Clustered on the key it is written and read by (migration 0002): one B-tree per insert on SQLite.
    __table_args__ = (PrimaryKeyConstraint("run_id", "seq"), {"sqlite_with_rowid": False})

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    seq: Mapped[int]
    name: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow)


class TaskStateEntry(IdMixin, CreatedMixin, Base):
    __tablename__ = "task_state_entries"
    __table_args__ = (Index("ix_task_state_entries_task_created", "task_id", "created_at"),)

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), index=True)
    state: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    uri: Mapped[str | None] = mapped_column(Text)
