"""Agents (a canvas DSL plus metadata), their immutable versions, and presets of a version.

``Agent.dsl`` is the draft being edited (ragflow's ``user_canvas.dsl``); a task always runs
an :class:`AgentVersion`, so editing the draft never changes a task already started.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from taskcanvas.store.models.base import Base, CreatedMixin, IdMixin, TimestampsMixin


class Agent(IdMixin, TimestampsMixin, Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("owner_id", "title"),)

    owner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    organization_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    avatar: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32), default="agent_canvas")
    permission: Mapped[str] = mapped_column(String(16), default="me")
    tags: Mapped[str] = mapped_column(String(512), default="")
    canvas_type: Mapped[str | None] = mapped_column(String(64))
    dsl: Mapped[dict[str, Any]]

    versions: Mapped[list[AgentVersion]] = relationship(
        back_populates="agent", lazy="raise", order_by="AgentVersion.number", passive_deletes=True)


class AgentVersion(IdMixin, CreatedMixin, Base):
    __tablename__ = "agent_versions"
    __table_args__ = (UniqueConstraint("agent_id", "number"),)

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    number: Mapped[int]
    title: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    dsl: Mapped[dict[str, Any]]
    release: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    agent: Mapped[Agent] = relationship(back_populates="versions", lazy="raise")
    presets: Mapped[list[Preset]] = relationship(back_populates="version", lazy="raise", passive_deletes=True)


class Preset(IdMixin, CreatedMixin, Base):
    __tablename__ = "presets"
    __table_args__ = (UniqueConstraint("agent_version_id", "name"),)

    agent_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agent_versions.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_default: Mapped[bool] = mapped_column(default=False)

    version: Mapped[AgentVersion] = relationship(back_populates="presets", lazy="raise")
