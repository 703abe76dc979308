"""Agent sessions and their turns, as ragflow's agent API has them (``/api/v1/agents/<id>/sessions``).

A session here is a conversation with one agent version, kept between turns: its messages and
the canvas state the engine checkpoints. Each turn is one run: stored ``queued``, then handed to
the executor. ragflow has three ways to start a turn, all covered by :meth:`Sessions.start_turn`:

- no session yet: a new ``workflow`` session from the agent's latest version (ragflow's draft
  run); with ``source="agent"`` it is the session ragflow's ``completion()`` makes (OpenAI mode);
- an existing session continues from its stored state;
- a session waiting for input (a UserFillUp) is resumed: ``inputs`` answer the form.

Sessions made by ``POST /agents/<id>/sessions`` are ``agent`` sessions; the faces filter their
events differently, the sessions themselves run the same way. A session belongs to the account
that made it: nobody else sees it (ragflow shows an agent's sessions to everyone who can read
the agent); ``external_user`` keeps ragflow's free-text ``user_id``. Webhook calls run in
``webhook`` sessions of the agent's owner, which no list shows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.dsl.errors import DslError
from taskcanvas.dsl.load import load_canvas
from taskcanvas.execution import ACTIVE_STATUSES, QUEUED, Executor, FirstRun
from taskcanvas.service import audit
from taskcanvas.service.accounts import user_of
from taskcanvas.service.audit import Origin
from taskcanvas.service.auth import Principal
from taskcanvas.service.errors import Conflict, Forbidden, Invalid, NotFound
from taskcanvas.service.rbac import Action, Resource, ResourceKind, authorize
from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.journal import Entry
from taskcanvas.store.models import Agent, AgentVersion, Run, RunEvent, Session
from taskcanvas.store.models.types import new_id
from taskcanvas.store.repositories import AgentRepository, RunRepository, SessionRepository, SettingRepository
from taskcanvas.store.repositories.settings import default_models_key

AGENT_SOURCE, WORKFLOW_SOURCE, WEBHOOK_SOURCE = "agent", "workflow", "webhook"
LISTED_SOURCES: Final = (AGENT_SOURCE, WORKFLOW_SOURCE)
"""The sessions ragflow's API shows: made by ``POST /sessions`` or by a completion."""

DEFAULT_PROLOGUE: Final = "Hi! I'm your smart assistant. What can I do for you?"
NAME_LIMIT: Final = 250

NO_ACCESS: Final = "Make sure you have permission to access the agent."
SESSION_NOT_FOUND: Final = "Session not found!"
SESSION_OF_ANOTHER_AGENT: Final = "Session does not belong to the requested agent."
SESSION_NO_ACCESS: Final = "Only authorized users can access this agent session."
NO_RELEASE: Final = "No available published version"
BUSY: Final = "This agent session is already running."

_ORDER_FIELDS: Final[Mapping[str, str]] = {
    "create_time": "created_at", "create_date": "created_at", "update_time": "updated_at",
    "update_date": "updated_at", "name": "name", "id": "id",
}


class SessionBusy(Conflict):
    """A turn is still running in the session: ragflow answers 103 (the Go port's words)."""

    def __init__(self) -> None:
        super().__init__(BUSY)


@dataclass(frozen=True)
class SessionView:
    """A session with what ragflow's session JSON shows: its agent, version and latest run."""

    session: Session
    agent: Agent
    version: AgentVersion | None
    latest_run: Run | None


@dataclass(frozen=True)
class Turn:
    """A turn handed to the executor: the session (made for it when ``created``) and its run."""

    session: Session
    run: Run
    agent: Agent
    created: bool


@dataclass(frozen=True)
class Deleted:
    """What a bulk delete did: ragflow reports partial success per id."""

    count: int
    errors: list[str]
    duplicates: list[str]


def session_resource(agent: Agent, session: Session) -> Resource:
    return Resource(ResourceKind.SESSION, org_id=agent.organization_id, owner_id=session.user_id)


def parse_id(value: str | None) -> uuid.UUID | None:
    """ragflow's 32-hex ids (the dashed form too); ``None`` for anything else."""
    if not value:
        return None
    try:
        return uuid.UUID(str(value).strip())
    except ValueError:
        return None


def prologue(dsl: Mapping[str, Any]) -> str | None:
    """The Begin component's prologue (ragflow's default when the canvas sets none)."""
    try:
        canvas = load_canvas(dsl)
    except DslError:
        return DEFAULT_PROLOGUE
    for spec in canvas.components.values():
        if spec.component_name == "Begin":
            value = spec.params.get("prologue", DEFAULT_PROLOGUE)
            return value if value is None or isinstance(value, str) else str(value)
    return DEFAULT_PROLOGUE


class Sessions:
    """ragflow's agent sessions on one database and executor."""

    def __init__(self, database: Database, executor: Executor) -> None:
        self.database = database
        self.executor = executor

    # ------------------------------------------------------------------ sessions
    async def create_session(self, principal: Principal, agent_id: uuid.UUID | None, *, name: str = "",
                             user_id: str | None = None, release: bool = False,
                             origin: Origin | None = None) -> SessionView:
        """``POST /agents/<id>/sessions``: an ``agent`` session holding the Begin prologue."""
        agent = await self._readable_agent(principal, agent_id)
        if not _may(principal, Action.CREATE, agent, principal.user_id):
            raise Forbidden(None, message=NO_ACCESS)
        version = await self._version(agent, released=release)
        opening = prologue(version.dsl)
        async with self.database.session() as s:
            row = await SessionRepository(s).create(agent.id, agent_version_id=version.id, user_id=principal.user_id,
                                                    name=(name or "")[:255],
                                                    messages=[{"role": "assistant", "content": opening}])
            row.source = AGENT_SOURCE
            row.external_user = _external(user_id)
            await audit.record(s, principal, "create", "session", row.id, origin=origin,
                               organization_id=agent.organization_id, details={"agent_id": str(agent.id)})
        return SessionView(row, agent, version, None)

    async def list_sessions(self, principal: Principal, agent_id: uuid.UUID | None, *, page: int = 1,
                            page_size: int = 30, orderby: str = "update_time", desc: bool = True,
                            session_id: str | None = None, user_id: str | None = None,
                            keywords: str | None = None) -> tuple[list[SessionView], int]:
        """The caller's sessions of the agent, one page of them, and how many there are."""
        agent = await self._readable_agent(principal, agent_id)
        async with self.database.reading() as s:
            query = select(Session).where(Session.agent_id == agent.id, Session.user_id == principal.user_id,
                                          Session.source.in_(LISTED_SOURCES))
            if session_id:
                wanted = parse_id(session_id)
                if wanted is None:
                    return [], 0
                query = query.where(Session.id == wanted)
            if user_id:
                query = query.where(Session.external_user == user_id)
            rows = list(await s.scalars(query))
            if keywords:
                needle = keywords.lower()
                rows = [r for r in rows if needle in r.id.hex or needle in (r.name or "").lower()
                        or needle in _message_text(r.messages).lower()]
            field = _ORDER_FIELDS.get(orderby, "updated_at")
            rows.sort(key=lambda r: (getattr(r, field), r.id), reverse=desc)
            total = len(rows)
            start = (max(page, 1) - 1) * page_size
            rows = rows[start:start + page_size]
            views = await _views(s, agent, rows)
        return views, total

    async def get_session(self, principal: Principal, agent_id: uuid.UUID | None,
                          session_id: uuid.UUID | None) -> SessionView:
        agent = await self._readable_agent(principal, agent_id)
        async with self.database.reading() as s:
            row = await SessionRepository(s).get(session_id) if session_id is not None else None
            if row is None or not _own_listed(principal, agent, row):
                raise NotFound(SESSION_NOT_FOUND)
            return (await _views(s, agent, [row]))[0]

    async def delete_session(self, principal: Principal, agent_id: uuid.UUID | None,
                             session_id: uuid.UUID | None, *, origin: Origin | None = None) -> None:
        agent = await self._readable_agent(principal, agent_id)
        async with self.database.session() as s:
            row = await SessionRepository(s).get(session_id) if session_id is not None else None
        if row is None or not _own_listed(principal, agent, row) or not _may(principal, Action.DELETE, agent,
                                                                             row.user_id):
            raise NotFound(SESSION_NOT_FOUND)
        await self._remove(principal, agent, row, origin)

    async def delete_sessions(self, principal: Principal, agent_id: uuid.UUID | None, ids: Sequence[Any] | None,
                              *, delete_all: bool = False, origin: Origin | None = None) -> Deleted:
        """ragflow's bulk delete: each id that is not the caller's session of this agent is an error."""
        agent = await self._readable_agent(principal, agent_id, message=f"You don't own the agent {agent_id}")
        if not ids:
            if not delete_all:
                return Deleted(0, [], [])
            async with self.database.session() as s:
                rows = list(await s.scalars(select(Session).where(
                    Session.agent_id == agent.id, Session.user_id == principal.user_id,
                    Session.source.in_(LISTED_SOURCES))))
            for row in rows:
                await self._remove(principal, agent, row, origin)
            return Deleted(len(rows), [], [])
        given = [str(i) for i in ids]
        duplicates = [f"Duplicate session ids: {i}" for i in dict.fromkeys(given) if given.count(i) > 1]
        count, errors = 0, []
        for raw in dict.fromkeys(given):
            wanted = parse_id(raw)
            async with self.database.session() as s:
                found = await SessionRepository(s).get(wanted) if wanted is not None else None
            if found is None or not _own_listed(principal, agent, found) or not _may(principal, Action.DELETE, agent,
                                                                                     found.user_id):
                errors.append(f"The agent doesn't own the session {raw}")
                continue
            await self._remove(principal, agent, found, origin)
            count += 1
        return Deleted(count, errors, duplicates)

    # ------------------------------------------------------------------ turns
    async def start_turn(self, principal: Principal, agent_id: uuid.UUID | None, *,
                         session_id: str | None = None, query: Any = "", inputs: Mapping[str, Any] | None = None,
                         files: Sequence[Any] | None = None, user_id: str | None = None, release: bool = False,
                         name: str | None = None, source: str = WORKFLOW_SOURCE,
                         origin: Origin | None = None) -> Turn:
        """One turn: a new session (none given), or the next turn of the caller's session.

        ``files`` are accepted for ragflow's shape; a run has no place for them yet (the executor
        hands the engine none), so they are not kept.
        """
        del files
        checked_inputs = _inputs(inputs)
        if not session_id:
            return await self._first_turn(principal, agent_id, query=query, inputs=checked_inputs, user_id=user_id,
                                          release=release, name=name, source=source, origin=origin)
        agent, row = await self._continued(principal, agent_id, session_id)
        try:
            async with self.database.session() as s:
                runs = RunRepository(s)
                latest = await runs.latest(row.id)
                if latest is not None and (latest.status in ACTIVE_STATUSES or self.executor.is_executing(latest.id)):
                    raise SessionBusy()
                run = await runs.create(row.id, query=query if query is not None else "", inputs=checked_inputs)
                if user_id and row.external_user != user_id:
                    stored = await SessionRepository(s).get(row.id)
                    if stored is not None:
                        stored.external_user = _external(user_id)
        except StoreConflict:
            raise SessionBusy() from None
        self.executor.submit(run.id)
        return Turn(row, run, agent, False)

    async def _first_turn(self, principal: Principal, agent_id: uuid.UUID | None, *, query: Any,
                          inputs: dict[str, Any], user_id: str | None, release: bool, name: str | None,
                          source: str, origin: Origin | None) -> Turn:
        """A new session and its first run, written in one journal entry (with its audit entry) and
        handed to the executor with what its start needs, so it starts without a read."""
        async with self.database.reading() as s:
            agent = await AgentRepository(s).get(agent_id) if agent_id is not None else None
            if agent is None or not _may(principal, Action.READ, agent, agent.owner_id, kind=ResourceKind.AGENT) \
                    or not _may(principal, Action.CREATE, agent, principal.user_id):
                raise Forbidden(None, message=NO_ACCESS)
            # Not its canvas: the executor builds a version's canvas once, and reads it then.
            version = await _newest_version(s, agent.id, released=release, with_dsl=False)
            chosen = await SettingRepository(s).get(default_models_key(principal.user_id)) \
                if principal.user_id is not None else None
            actor = await user_of(s, principal)
        title = name or (query if isinstance(query, str) else "")
        row = Session(id=new_id(), agent_id=agent.id, agent_version_id=version.id, user_id=principal.user_id,
                      name=(title or "")[:NAME_LIMIT], messages=[], source=source, external_user=_external(user_id))
        run = Run(id=new_id(), session_id=row.id, number=1, query=query if query is not None else "", inputs=inputs,
                  status=QUEUED)
        entry = Entry()
        for new in (row, run, audit.entry(principal, "create", "session", row.id,
                                          actor_name=actor.username if actor is not None else "", origin=origin,
                                          organization_id=agent.organization_id,
                                          details={"agent_id": str(agent.id)})):
            entry.add(new)
        await self.executor.start_first(entry, FirstRun(run, row, chosen))
        return Turn(row, run, agent, True)

    async def webhook_target(self, agent_id: uuid.UUID | None) -> tuple[Agent, AgentVersion] | None:
        """The agent a webhook call names and the version it runs (the newest), without any account:
        a webhook is protected by its own security settings, not by a login."""
        if agent_id is None:
            return None
        async with self.database.session() as s:
            agents = AgentRepository(s)
            agent = await agents.get(agent_id)
            version = await agents.latest_version(agent_id) if agent is not None else None
        return None if agent is None or version is None else (agent, version)

    async def start_webhook_run(self, agent: Agent, version: AgentVersion, inputs: Mapping[str, Any], *,
                                test: bool = False) -> Turn:
        """A webhook call: a run of ``version`` in a ``webhook`` session of the agent's owner.

        The caller (the face) has already checked the webhook's own security: there is no account.
        """
        async with self.database.session() as s:
            row = await SessionRepository(s).create(agent.id, agent_version_id=version.id, user_id=agent.owner_id,
                                                    name="webhook test" if test else "webhook")
            row.source = WEBHOOK_SOURCE
            run = await RunRepository(s).create(row.id, query="", inputs=dict(inputs))
        self.executor.submit(run.id)
        return Turn(row, run, agent, True)

    async def cancel(self, principal: Principal, session_id: str) -> bool:
        """Stop the running turn of one of the caller's sessions; whether one was stopped.

        ragflow answers ``true`` whatever the id: an unknown id, or a session the caller may not
        touch, changes nothing and is not reported.
        """
        wanted = parse_id(session_id)
        if wanted is None:
            return False
        async with self.database.session() as s:
            row = await SessionRepository(s).get(wanted)
            agent = await AgentRepository(s).get(row.agent_id) if row is not None else None
            latest = await RunRepository(s).latest(row.id) if row is not None else None
        if row is None or agent is None or latest is None or row.task_id is not None:
            return False
        run_resource = Resource(ResourceKind.RUN, org_id=agent.organization_id, owner_id=row.user_id)
        if not authorize(principal, Action.CANCEL, run_resource).allowed:
            return False
        return self.executor.cancel(latest.id)

    # ------------------------------------------------------------------ reading runs
    async def run_events(self, principal: Principal, agent_id: uuid.UUID | None,
                         message_id: str) -> list[dict[str, Any]]:
        """The stored events of the caller's run with this ``message_id`` (none if there is no such run)."""
        agent = await self._readable_agent(principal, agent_id)
        async with self.database.reading() as s:
            run = await s.scalar(select(Run).join(Session, Run.session_id == Session.id).where(
                Session.agent_id == agent.id, Run.message_id == message_id).limit(1))
            session = await SessionRepository(s).get(run.session_id) if run is not None else None
            if run is None or session is None or not _may(principal, Action.READ, agent, session.user_id,
                                                          kind=ResourceKind.RUN):
                return []
            rows = await s.scalars(select(RunEvent).where(RunEvent.run_id == run.id).order_by(RunEvent.seq))
            return [dict(r.payload) for r in rows]

    async def webhook_runs(self, principal: Principal, agent_id: uuid.UUID | None,
                           ) -> list[tuple[Run, list[RunEvent]]]:
        """The agent's webhook runs with their events, oldest first; for whoever may change the agent."""
        async with self.database.reading() as s:
            agent = await AgentRepository(s).get(agent_id) if agent_id is not None else None
            if agent is None or not _may(principal, Action.UPDATE, agent, agent.owner_id, kind=ResourceKind.AGENT):
                raise NotFound("Canvas not found.")
            runs = list(await s.scalars(select(Run).join(Session, Run.session_id == Session.id).where(
                Session.agent_id == agent.id, Session.source == WEBHOOK_SOURCE).order_by(Run.created_at, Run.id)))
            events: dict[uuid.UUID, list[RunEvent]] = {run.id: [] for run in runs}
            if runs:
                for event in await s.scalars(select(RunEvent).where(RunEvent.run_id.in_(list(events)))
                                             .order_by(RunEvent.run_id, RunEvent.seq)):
                    events[event.run_id].append(event)
        return [(run, events[run.id]) for run in runs]

    async def run(self, run_id: uuid.UUID) -> Run | None:
        async with self.database.session() as s:
            return await RunRepository(s).get(run_id)

    # ------------------------------------------------------------------ internals
    async def _agent(self, agent_id: uuid.UUID | None) -> Agent | None:
        if agent_id is None:
            return None
        async with self.database.session() as s:
            return await AgentRepository(s).get(agent_id)

    async def _readable_agent(self, principal: Principal, agent_id: uuid.UUID | None, *,
                              message: str = NO_ACCESS) -> Agent:
        """ragflow checks access to the agent first: a missing or hidden one is 103."""
        agent = await self._agent(agent_id)
        if agent is None or not _may(principal, Action.READ, agent, agent.owner_id, kind=ResourceKind.AGENT):
            if message == NO_ACCESS:
                raise Forbidden(None, message=message)
            raise NotFound(message)
        return agent

    async def _version(self, agent: Agent, *, released: bool) -> AgentVersion:
        async with self.database.reading() as s:
            return await _newest_version(s, agent.id, released=released, with_dsl=True)

    async def _continued(self, principal: Principal, agent_id: uuid.UUID | None,
                         session_id: str) -> tuple[Agent, Session]:
        wanted = parse_id(session_id)
        async with self.database.session() as s:
            row = await SessionRepository(s).get(wanted) if wanted is not None else None
            agent = await AgentRepository(s).get(row.agent_id) if row is not None else None
        if row is None or agent is None or row.source not in LISTED_SOURCES:
            raise NotFound(SESSION_NOT_FOUND)
        if agent_id is None or row.agent_id != agent_id:
            raise Forbidden(None, message=SESSION_OF_ANOTHER_AGENT)
        if not _may(principal, Action.READ, agent, agent.owner_id, kind=ResourceKind.AGENT):
            raise Forbidden(None, message=SESSION_NO_ACCESS)
        if not _may(principal, Action.SEND, agent, row.user_id):
            raise NotFound(SESSION_NOT_FOUND)
        return agent, row

    async def _remove(self, principal: Principal, agent: Agent, row: Session, origin: Origin | None) -> None:
        async with self.database.session() as s:
            latest = await RunRepository(s).latest(row.id)
        if latest is not None and self.executor.cancel(latest.id, "the session was deleted"):
            await self.executor.wait(latest.id)
        async with self.database.session() as s:
            await SessionRepository(s).delete(row.id)
            await audit.record(s, principal, "delete", "session", row.id, origin=origin,
                               organization_id=agent.organization_id, details={"agent_id": str(agent.id)})


async def _newest_version(s: AsyncSession, agent_id: uuid.UUID, *, released: bool, with_dsl: bool) -> AgentVersion:
    """The version a new session runs: the agent's newest (released, when asked)."""
    version = await AgentRepository(s).latest_version(agent_id, released=released, with_dsl=with_dsl)
    if version is None:
        raise NotFound(NO_RELEASE if released else "Agent has no version.")
    return version


def _may(principal: Principal, action: Action, agent: Agent, owner_id: uuid.UUID | None, *,
         kind: ResourceKind = ResourceKind.SESSION) -> bool:
    return authorize(principal, action, Resource(kind, org_id=agent.organization_id, owner_id=owner_id)).allowed


def _own_listed(principal: Principal, agent: Agent, row: Session) -> bool:
    """One of the agent's ragflow sessions that the caller may read (their own; any for owners and auditors)."""
    return (row.agent_id == agent.id and row.source in LISTED_SOURCES
            and _may(principal, Action.READ, agent, row.user_id))


def _external(user_id: Any) -> str | None:
    if user_id is None or user_id == "":
        return None
    return str(user_id)[:255]


def _inputs(inputs: Any) -> dict[str, Any]:
    if inputs is None or inputs == "":
        return {}
    if not isinstance(inputs, Mapping):
        raise Invalid("`inputs` must be an object: {name: {value}}.", field="inputs")
    return dict(inputs)


def _message_text(messages: Sequence[Any]) -> str:
    return " ".join(str(m.get("content", "")) for m in messages if isinstance(m, Mapping))


async def _views(s: AsyncSession, agent: Agent, rows: Sequence[Session]) -> list[SessionView]:
    if not rows:
        return []
    version_ids = {r.agent_version_id for r in rows if r.agent_version_id is not None}
    versions = {v.id: v for v in await s.scalars(select(AgentVersion).where(AgentVersion.id.in_(version_ids)))} \
        if version_ids else {}
    runs = RunRepository(s)
    views = []
    for row in rows:
        latest = await runs.latest(row.id)
        views.append(SessionView(row, agent, versions.get(row.agent_version_id) if row.agent_version_id else None,
                                 latest))
    return views

