"""Queries about agents, their versions and the presets of a version."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from taskcanvas.store.models import Agent, AgentVersion, Preset


class AgentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, owner_id: uuid.UUID, title: str, dsl: Mapping[str, Any], *,
                     organization_id: uuid.UUID | None = None, description: str = "", avatar: str | None = None,
                     permission: str = "me", category: str = "agent_canvas") -> Agent:
        agent = Agent(owner_id=owner_id, organization_id=organization_id, title=title, dsl=dict(dsl),
                      description=description, avatar=avatar, permission=permission, category=category)
        self._session.add(agent)
        await self._session.flush()
        return agent

    async def get(self, agent_id: uuid.UUID) -> Agent | None:
        return await self._session.get(Agent, agent_id)

    async def by_title(self, owner_id: uuid.UUID, title: str) -> Agent | None:
        return await self._session.scalar(select(Agent).where(Agent.owner_id == owner_id, Agent.title == title))

    async def find(self, *, owner_id: uuid.UUID | None = None, organization_id: uuid.UUID | None = None,
                   title_contains: str | None = None, limit: int = 50, offset: int = 0) -> list[Agent]:
        """Agents, most recently updated first."""
        query = select(Agent)
        if owner_id is not None:
            query = query.where(Agent.owner_id == owner_id)
        if organization_id is not None:
            query = query.where(Agent.organization_id == organization_id)
        if title_contains:
            query = query.where(Agent.title.contains(title_contains, autoescape=True))
        query = query.order_by(Agent.updated_at.desc(), Agent.id.desc()).limit(limit).offset(offset)
        return list(await self._session.scalars(query))

    async def delete(self, agent_id: uuid.UUID) -> bool:
        """Delete an agent with its versions, presets and sessions (tasks still using it forbid this)."""
        result = await self._session.execute(delete(Agent).where(Agent.id == agent_id))
        return bool(getattr(result, "rowcount", 0))

    # ------------------------------------------------------------------ versions
    async def add_version(self, agent_id: uuid.UUID, dsl: Mapping[str, Any], *, title: str = "",
                          description: str = "", created_by: uuid.UUID | None = None) -> AgentVersion:
        """A new immutable version numbered after the last one (1, 2, ...)."""
        last = await self._session.scalar(
            select(func.max(AgentVersion.number)).where(AgentVersion.agent_id == agent_id))
        version = AgentVersion(agent_id=agent_id, number=(last or 0) + 1, dsl=dict(dsl), title=title,
                               description=description, created_by=created_by)
        self._session.add(version)
        await self._session.flush()
        return version

    async def get_version(self, version_id: uuid.UUID) -> AgentVersion | None:
        return await self._session.get(AgentVersion, version_id)

    async def latest_version(self, agent_id: uuid.UUID, *, released: bool = False,
                             with_dsl: bool = True) -> AgentVersion | None:
        """The agent's newest version (newest released one, if ``released``); ``with_dsl=False``
        leaves the canvas unread (reading it raises), for callers that only need the row."""
        statement = select(AgentVersion).where(AgentVersion.agent_id == agent_id)
        if released:
            statement = statement.where(AgentVersion.release.is_(True))
        if not with_dsl:
            statement = statement.options(defer(AgentVersion.dsl, raiseload=True))
        return await self._session.scalar(statement.order_by(AgentVersion.number.desc()).limit(1))

    async def versions(self, agent_id: uuid.UUID) -> list[AgentVersion]:
        """An agent's versions, newest first."""
        rows = await self._session.scalars(
            select(AgentVersion).where(AgentVersion.agent_id == agent_id).order_by(AgentVersion.number.desc()))
        return list(rows)

    # ------------------------------------------------------------------ presets
    async def add_preset(self, version_id: uuid.UUID, name: str, inputs: Mapping[str, Any], *,
                         is_default: bool = False) -> Preset:
        preset = Preset(agent_version_id=version_id, name=name, inputs=dict(inputs), is_default=is_default)
        self._session.add(preset)
        await self._session.flush()
        return preset

    async def get_preset(self, preset_id: uuid.UUID) -> Preset | None:
        return await self._session.get(Preset, preset_id)

    async def presets(self, version_id: uuid.UUID) -> list[Preset]:
        rows = await self._session.scalars(
            select(Preset).where(Preset.agent_version_id == version_id).order_by(Preset.name))
        return list(rows)
