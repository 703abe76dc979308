"""Agents: a canvas DSL with a title, edited as a draft, run as immutable versions.

Saving a DSL that differs from the newest version makes a new version (ragflow's
``save_or_replace_latest`` without the in-place replace: a task that runs a version must
find it unchanged). Publishing is ``release=True``, as in ragflow. A DSL is checked the way
a run would check it (loaded and every component built) before anything is stored, so a
broken canvas is refused with every problem named and nothing already stored changes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from taskcanvas.components import builtin_registry
from taskcanvas.dsl.errors import DslError
from taskcanvas.dsl.load import load_canvas
from taskcanvas.errors import TaskcanvasError
from taskcanvas.runtime.canvas import Canvas
from taskcanvas.service import audit
from taskcanvas.service.audit import Origin
from taskcanvas.service.auth import Principal
from taskcanvas.service.errors import Conflict, Invalid, NotFound
from taskcanvas.service.rbac import Action, Resource, ResourceKind, list_scope, require
from taskcanvas.store import Database
from taskcanvas.store.models import Agent, AgentVersion, Task
from taskcanvas.store.repositories import AgentRepository, OrganizationRepository

DEFAULT_ORGANIZATION = "default"
_TAG_LIMIT, _TAGS_LIMIT = 64, 512


@dataclass(frozen=True)
class AgentWithVersion:
    agent: Agent
    version: AgentVersion


def resource(agent: Agent) -> Resource:
    return Resource(ResourceKind.AGENT, org_id=agent.organization_id, owner_id=agent.owner_id)


def check_dsl(dsl: Any) -> dict[str, Any]:
    """The DSL as a JSON object if it builds into a canvas; :class:`Invalid` naming every problem otherwise."""
    if isinstance(dsl, str):
        try:
            dsl = json.loads(dsl)
        except ValueError as e:
            raise Invalid("DSL must be a JSON object.", field="dsl", detail=f"not JSON: {e}") from None
    if not isinstance(dsl, Mapping):
        raise Invalid("DSL must be a JSON object.", field="dsl")
    try:
        Canvas.build(load_canvas(dsl), builtin_registry(), source="dsl")
    except DslError as e:
        raise Invalid("The canvas is not valid.", field="dsl",
                      detail="; ".join(str(issue) for issue in e.issues if issue.severity == "error")) from None
    except TaskcanvasError as e:
        raise Invalid("The canvas is not valid.", field="dsl", detail=str(e)) from None
    return dict(dsl)


class Agents:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, principal: Principal, title: str, dsl: Any, *, description: str = "",
                     avatar: str | None = None, canvas_type: str | None = None, category: str = "agent_canvas",
                     permission: str = "me", release: bool = False, origin: Origin | None = None) -> AgentWithVersion:
        title = (title or "").strip()
        if not title:
            raise Invalid("No title in request.", field="title")
        checked = check_dsl(dsl)
        async with self.database.session() as s:
            org = await OrganizationRepository(s).by_name(DEFAULT_ORGANIZATION)
            org_id = org.id if org is not None else None
            require(principal, Action.CREATE, Resource(ResourceKind.AGENT, org_id=org_id, owner_id=principal.user_id))
            agents = AgentRepository(s)
            if await _title_taken(agents, principal.user_id, title):
                raise Conflict(f"{title} already exists.", detail="title")
            agent = await agents.create(principal.user_id, title, checked, organization_id=org_id,
                                        description=description or "", avatar=avatar, permission=permission,
                                        category=category)
            agent.canvas_type = canvas_type
            version = await agents.add_version(agent.id, checked, title=title, description=description or "",
                                               created_by=principal.user_id)
            version.release = release
            await audit.record(s, principal, "create", "agent", agent.id, origin=origin, organization_id=org_id,
                               details={"title": title, "version": version.number})
        return AgentWithVersion(agent, version)

    async def get(self, principal: Principal, agent_id: uuid.UUID) -> Agent:
        async with self.database.session() as s:
            agent = await AgentRepository(s).get(agent_id)
        if agent is None:
            raise NotFound()
        require(principal, Action.READ, resource(agent))
        return agent

    async def update(self, principal: Principal, agent_id: uuid.UUID, *, title: str | None = None,
                     dsl: Any = None, description: str | None = None, avatar: str | None = None,
                     canvas_type: str | None = None, permission: str | None = None, release: bool | None = None,
                     origin: Origin | None = None) -> AgentWithVersion:
        checked = check_dsl(dsl) if dsl is not None else None
        async with self.database.session() as s:
            agents = AgentRepository(s)
            agent = await _allowed(agents, principal, agent_id, Action.UPDATE)
            if title is not None and title.strip() and title.strip() != agent.title:
                if await _title_taken(agents, agent.owner_id, title.strip()):
                    raise Conflict(f"{title.strip()} already exists.", detail="title")
                agent.title = title.strip()
            for name, value in (("description", description), ("avatar", avatar), ("canvas_type", canvas_type),
                                ("permission", permission)):
                if value is not None:
                    setattr(agent, name, value)
            version = await agents.latest_version(agent.id)
            if checked is not None and (version is None or version.dsl != checked):
                agent.dsl = checked
                version = await agents.add_version(agent.id, checked, title=agent.title,
                                                   description=agent.description, created_by=principal.user_id)
            if version is None:  # pragma: no cover - every agent is created with a version
                raise NotFound()
            if release is not None:
                version.release = release
            await audit.record(s, principal, "write", "agent", agent.id, origin=origin,
                               organization_id=agent.organization_id,
                               details={"version": version.number, "dsl_changed": checked is not None})
        return AgentWithVersion(agent, version)

    async def delete(self, principal: Principal, agent_id: uuid.UUID, *, origin: Origin | None = None) -> None:
        async with self.database.session() as s:
            agents = AgentRepository(s)
            agent = await _allowed(agents, principal, agent_id, Action.DELETE)
            if await s.scalar(select(Task.id).where(Task.agent_id == agent.id).limit(1)) is not None:
                raise Conflict("The agent has tasks; delete them first.", detail=str(agent.id))
            await agents.delete(agent.id)
            await audit.record(s, principal, "delete", "agent", agent.id, origin=origin,
                               organization_id=agent.organization_id, details={"title": agent.title})

    async def find(self, principal: Principal, *, keywords: str | None = None, limit: int = 30,
                   offset: int = 0) -> tuple[list[Agent], int]:
        """Agents the caller may read, newest first, and how many there are in all."""
        scope = list_scope(principal, Action.READ, ResourceKind.AGENT)
        if scope.empty:
            return [], 0
        async with self.database.session() as s:
            rows = await AgentRepository(s).find(limit=100_000)
        visible = [a for a in rows if scope.matches(resource(a))]
        if keywords:
            needle = keywords.lower()
            visible = [a for a in visible if needle in a.title.lower() or needle in (a.tags or "").lower()]
        visible.sort(key=lambda a: (a.created_at, a.id), reverse=True)
        return visible[offset:offset + limit], len(visible)

    async def versions(self, principal: Principal, agent_id: uuid.UUID) -> list[AgentVersion]:
        agent = await self.get(principal, agent_id)
        async with self.database.session() as s:
            return await AgentRepository(s).versions(agent.id)

    async def version(self, principal: Principal, version_id: uuid.UUID) -> AgentWithVersion:
        """A version and its agent, if the caller may read the agent (404 otherwise)."""
        async with self.database.session() as s:
            agents = AgentRepository(s)
            version = await agents.get_version(version_id)
            agent = await agents.get(version.agent_id) if version is not None else None
        if version is None or agent is None:
            raise NotFound()
        require(principal, Action.READ, resource(agent))
        return AgentWithVersion(agent, version)

    async def latest(self, principal: Principal, agent_id: uuid.UUID, *, released: bool = False) -> AgentWithVersion:
        agent = await self.get(principal, agent_id)
        async with self.database.session() as s:
            versions = await AgentRepository(s).versions(agent.id)
        if released:
            versions = [v for v in versions if v.release]
        if not versions:
            raise NotFound("No available published version" if released else "Agent has no version.")
        return AgentWithVersion(agent, versions[0])

    async def set_tags(self, principal: Principal, agent_id: uuid.UUID, tags: str | Sequence[str], *,
                       origin: Origin | None = None) -> None:
        names = [t.strip() for t in (tags.split(",") if isinstance(tags, str) else tags) if str(t).strip()]
        if any(len(t) > _TAG_LIMIT for t in names) or len(",".join(names)) > _TAGS_LIMIT:
            raise Invalid(f"Each tag must be at most {_TAG_LIMIT} characters and all of them at most "
                          f"{_TAGS_LIMIT}.", field="tags")
        async with self.database.session() as s:
            agent = await _allowed(AgentRepository(s), principal, agent_id, Action.UPDATE)
            agent.tags = ",".join(dict.fromkeys(names))
            await audit.record(s, principal, "write", "agent", agent.id, origin=origin,
                               organization_id=agent.organization_id, details={"tags": agent.tags})

    async def tag_counts(self, principal: Principal) -> dict[str, int]:
        agents, _ = await self.find(principal, limit=100_000)
        counts: dict[str, int] = {}
        for agent in agents:
            for tag in filter(None, (agent.tags or "").split(",")):
                counts[tag] = counts.get(tag, 0) + 1
        return counts


async def _title_taken(agents: AgentRepository, owner_id: uuid.UUID, title: str) -> bool:
    """ragflow compares titles without regard to case (on every database, unlike LIKE)."""
    existing = await agents.find(owner_id=owner_id, limit=100_000)
    return any(a.title.lower() == title.lower() for a in existing)


async def _allowed(agents: AgentRepository, principal: Principal, agent_id: uuid.UUID, action: Action) -> Agent:
    """The agent, if the caller may see it (404 otherwise) and do ``action`` to it (403 otherwise)."""
    agent = await agents.get(agent_id)
    if agent is None:
        raise NotFound()
    require(principal, Action.READ, resource(agent))
    require(principal, action, resource(agent))
    return agent
