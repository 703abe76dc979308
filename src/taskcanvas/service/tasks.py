"""Tasks: an agent version started with a prompt, followed through its runs (coder's Tasks).

A task owns one session; each input (the prompt, then every ``send``) is one run of it. What
coder computes from builds, agents and apps is computed here from the task's latest run:

=====================================  ==============  ==========================================
latest run                              ``status``      ``current_state`` (last recorded change)
=====================================  ==============  ==========================================
none yet, or queued and never started   pending         —
queued again after a pause              initializing    working
running                                 active          working
waiting for input (UserFillUp)          active          idle (the form's tips)
finished                                active          complete (the answer, clipped)
failed in a component, or cancelled     active          failed (the error)
failed before any component could run   error           failed (why it could not start)
paused, or the task paused              paused          unchanged
=====================================  ==============  ==========================================

Deleting a task hides it at once (``deleted_at``); its run is cancelled and its rows are
removed in the background.
"""

from __future__ import annotations

import datetime
import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BindParameter, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, defer

from taskcanvas.execution import PAUSED, QUEUED, RUNNING, Executor, FirstRun
from taskcanvas.service import audit, naming
from taskcanvas.service.accounts import user_of
from taskcanvas.service.agents import DEFAULT_ORGANIZATION
from taskcanvas.service.agents import resource as agent_resource
from taskcanvas.service.audit import Origin
from taskcanvas.service.auth import Principal
from taskcanvas.service.errors import Conflict, Invalid, NotFound, ServiceError
from taskcanvas.service.rbac import Action, Resource, ResourceKind, authorize, list_scope, require
from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.journal import Entry
from taskcanvas.store.models import (
    Agent,
    AgentVersion,
    Organization,
    Preset,
    Run,
    RunEvent,
    Session,
    SiteSetting,
    Task,
    TaskStateEntry,
    User,
)
from taskcanvas.store.models.types import new_id, utcnow
from taskcanvas.store.repositories import (
    AgentRepository,
    OrganizationRepository,
    RunRepository,
    SessionRepository,
    TaskRepository,
    UserRepository,
)
from taskcanvas.store.repositories.settings import default_models_key

STATUSES = ("pending", "initializing", "active", "paused", "error", "unknown")
VERSION_NOT_FOUND = "Template version not found or you do not have access to this resource"


@dataclass(frozen=True)
class StateEntry:
    timestamp: datetime.datetime
    state: str
    message: str
    uri: str = ""


@dataclass(frozen=True)
class TaskView:
    """A task with what its faces show: owner, organization, agent version, session, latest run."""

    task: Task
    owner: User
    organization: Organization | None
    agent: Agent
    version: AgentVersion
    session: Session | None
    latest_run: Run | None
    status: str
    current_state: StateEntry | None


@dataclass(frozen=True)
class LogEntry:
    id: int
    content: str
    type: str
    time: datetime.datetime


@dataclass(frozen=True)
class Logs:
    entries: list[LogEntry]
    snapshot: bool = False
    snapshot_at: datetime.datetime | None = None


@dataclass
class TaskFilter:
    owner_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    status: str | None = None
    agent_ids: set[uuid.UUID] | None = None
    name_contains: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def resource(task: Task) -> Resource:
    return Resource(ResourceKind.TASK, org_id=task.organization_id, owner_id=task.owner_id)


def derive_status(task: Task, run: Run | None) -> str:
    if task.status == PAUSED or (run is not None and run.status == PAUSED):
        return "paused"
    if run is None:
        return "pending"
    if run.status == QUEUED:
        return "pending" if run.started_at is None else "initializing"
    if run.status == RUNNING:
        return "active"
    if run.status == "failed" and not run.error_component and run.started_at is None:
        return "error"
    if run.status in ("finished", "waiting", "failed", "cancelled"):
        return "active"
    return "unknown"


def derive_state(status: str, entry: TaskStateEntry | None, run: Run | None) -> StateEntry | None:
    if entry is not None:
        return StateEntry(entry.created_at, entry.state, entry.message, entry.uri or "")
    if status == "initializing" and run is not None:
        return StateEntry(run.created_at, "working", "Task is resuming")
    return None


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        return None


class Tasks:
    def __init__(self, database: Database, executor: Executor, *, environ: Mapping[str, str]) -> None:
        self.database = database
        self.executor = executor
        self.environ = environ

    # ------------------------------------------------------------------ reading
    async def resolve_user(self, principal: Principal, ref: str) -> User:
        """``me``, a user id or a username; 404 for anyone the caller may not see."""
        async with self.database.reading() as s:
            return await _user_in(s, principal, ref)

    async def resolve_organization(self, principal: Principal, ref: str) -> Organization:
        """An organization by id or name (a task list's ``organization:`` filter); 404 if the caller may not see it."""
        ref = (ref or "").strip()
        org_id = parse_uuid(ref)
        async with self.database.session() as s:
            orgs = OrganizationRepository(s)
            org = await orgs.get(org_id) if org_id is not None else None
            if org is None and ref:
                org = await orgs.by_name(ref)
        if org is None:
            raise NotFound()
        require(principal, Action.READ, Resource(ResourceKind.ORGANIZATION, org_id=org.id))
        return org

    async def presets(self, principal: Principal, version_id: uuid.UUID) -> list[Preset]:
        """The presets a task of this agent version may start with; 404 if the caller may not read the agent."""
        async with self.database.session() as s:
            agents = AgentRepository(s)
            version = await agents.get_version(version_id)
            agent = await agents.get(version.agent_id) if version is not None else None
            rows = await agents.presets(version_id) if agent is not None else []
        if agent is None or not _may_read_agent(principal, agent):
            raise NotFound()
        return rows

    async def get(self, principal: Principal, owner_ref: str, ident: str) -> TaskView:
        """By id (any owner), else by name among ``owner_ref``'s tasks (coder's task parameter)."""
        ident = (ident or "").strip()
        if not ident:
            raise Invalid('"task" must be provided.', field="task")
        task_id = parse_uuid(ident)
        if task_id is not None:
            async with self.database.reading() as s:  # by id, the view in the same unit (every poll comes here)
                task = await TaskRepository(s).get(task_id)
                if task is not None and task.deleted_at is None:
                    require(principal, Action.READ, resource(task))
                    return (await _views_in(s, [task]))[0]
        owner = await self.resolve_user(principal, owner_ref)
        async with self.database.reading() as s:
            task = await s.scalar(select(Task).where(
                Task.owner_id == owner.id, func.lower(Task.name) == ident.lower(), Task.deleted_at.is_(None)))
        if task is None:
            raise NotFound()
        require(principal, Action.READ, resource(task))
        views = await self._views([task])
        return views[0]

    async def get_by_id(self, principal: Principal, task_id: uuid.UUID) -> TaskView:
        return await self.get(principal, "me", str(task_id))

    async def find(self, principal: Principal, query: TaskFilter | None = None) -> list[TaskView]:
        """Tasks the caller may read, newest first."""
        query = query or TaskFilter()
        scope = list_scope(principal, Action.READ, ResourceKind.TASK)
        if scope.empty:
            return []
        statement = select(Task).where(Task.deleted_at.is_(None))
        if query.owner_id is not None:
            statement = statement.where(Task.owner_id == query.owner_id)
        if query.organization_id is not None:
            statement = statement.where(Task.organization_id == query.organization_id)
        if query.agent_ids is not None:
            statement = statement.where(Task.agent_id.in_(query.agent_ids or {uuid.UUID(int=0)}))
        statement = statement.order_by(Task.created_at.desc(), Task.id.desc())
        async with self.database.session() as s:
            rows = [t for t in await s.scalars(statement) if scope.matches(resource(t))]
        if query.name_contains:
            rows = [t for t in rows if query.name_contains.lower() in t.name.lower()]
        views = await self._views(rows)
        if query.status:
            views = [v for v in views if v.status == query.status.lower()]
        return views

    async def runs(self, principal: Principal, view: TaskView) -> list[Run]:
        require(principal, Action.READ, resource(view.task))
        if view.session is None:
            return []
        async with self.database.reading() as s:
            return await RunRepository(s).for_session(view.session.id)

    async def prompts(self, principal: Principal, run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """The input that started each run the caller may see (others are simply absent)."""
        if not run_ids:
            return {}
        async with self.database.session() as s:
            rows = list(await s.execute(
                select(Run, Task).join(Task, Task.id == Run.task_id)
                .where(Run.id.in_(set(run_ids)), Task.deleted_at.is_(None))))
        out: dict[uuid.UUID, str] = {}
        scope = list_scope(principal, Action.READ, ResourceKind.TASK)
        for run, task in rows:
            if scope.matches(resource(task)):
                query = run.query
                out[run.id] = query if isinstance(query, str) else json.dumps(query, ensure_ascii=False)
        return out

    async def logs(self, principal: Principal, view: TaskView) -> Logs:
        """The conversation as coder's log entries: inputs and outputs, oldest first."""
        require(principal, Action.READ, resource(view.task))
        if view.status in ("error", "unknown"):
            raise Conflict("Cannot fetch logs for task in current state.", detail=f'Task status is "{view.status}".')
        entries: list[LogEntry] = []
        runs: list[Run] = []
        messages: list[Any] = []
        async with self.database.reading() as s:
            if view.session is not None:
                runs = await RunRepository(s).for_session(view.session.id)
                session = await SessionRepository(s).get(view.session.id)
                messages = list(session.messages) if session is not None else []
        for message in messages:
            if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant"):
                continue
            when = message.get("created_at")
            time = (datetime.datetime.fromtimestamp(when, datetime.UTC) if isinstance(when, (int, float))
                    else view.task.updated_at)
            entries.append(LogEntry(len(entries), _text(message.get("content")),
                                    "input" if message.get("role") == "user" else "output", time))
        for run in runs:
            if run.status in (QUEUED, RUNNING, PAUSED) and run.query not in (None, ""):
                entries.append(LogEntry(len(entries), _text(run.query), "input", run.created_at))
        if view.status in ("paused", "pending", "initializing"):
            return Logs(entries, snapshot=True, snapshot_at=view.task.updated_at if entries else None)
        return Logs(entries)

    # ------------------------------------------------------------------ changing
    async def create(self, principal: Principal, owner_ref: str, version_id: uuid.UUID | None, *, prompt: str,
                     name: str | None = None, display_name: str | None = None, preset_id: uuid.UUID | None = None,
                     seed_naming: bool = False, missing_version: type[ServiceError] = Invalid,
                     origin: Origin | None = None) -> TaskView:
        async with self.database.reading() as s:
            owner = await _user_in(s, principal, owner_ref)
            actor = owner if owner.id == principal.user_id else await user_of(s, principal)
            version, agent, org, chosen_models = None, None, None, None
            if version_id is not None:
                # With the owner's default models: what the first run needs besides the rows
                # written here, so it starts without a read.
                found = (await s.execute(_version_statement(), {
                    "version_id": version_id, "models_key": default_models_key(owner.id)})).first()
                if found is not None:
                    version, agent, org, chosen_models = found
            if agent is not None and agent.organization_id is None:
                org = await OrganizationRepository(s).by_name(DEFAULT_ORGANIZATION)
            preset = await AgentRepository(s).get_preset(preset_id) if preset_id is not None else None
        if version is None or agent is None or not _may_read_agent(principal, agent):
            raise _version_missing(missing_version)
        if preset_id is not None and (preset is None or preset.agent_version_id != version.id):
            raise Invalid("Template version preset not found.", field="template_version_preset_id")
        if name:
            naming.check_task_name(name)
        shown = naming.check_display_name(display_name or "")
        if not name or not shown:
            if seed_naming and not name:
                seed_name = await naming.generate_seed_name(prompt, environ=self.environ)
                generated = naming.TaskName(seed_name, seed_name)
            else:
                generated = await naming.generate(prompt, environ=self.environ)
            name = name or generated.name
            shown = shown or generated.display_name
        org_id = agent.organization_id or (org.id if org is not None else None)
        require(principal, Action.CREATE, Resource(ResourceKind.TASK, org_id=org_id, owner_id=owner.id))
        # The task, its session, first run (a new session's first run is number 1) and audit entry
        # in one journal entry: they share a commit with the runs in flight.
        task = Task(id=new_id(), owner_id=owner.id, agent_id=agent.id, agent_version_id=version.id, name=name,
                    prompt=prompt, display_name=shown, organization_id=org_id,
                    preset_id=preset.id if preset else None, status="active")
        session = Session(id=new_id(), agent_id=agent.id, task_id=task.id, agent_version_id=version.id,
                          user_id=owner.id, name=name, messages=[])
        run = Run(id=new_id(), session_id=session.id, task_id=task.id, number=1, query=prompt,
                  inputs=dict(preset.inputs) if preset else {}, status=QUEUED)
        entry = Entry()
        for row in (task, session, run, audit.entry(
                principal, "create", "task", task.id, actor_name=actor.username if actor is not None else "",
                origin=origin, organization_id=org_id,
                details={"name": name, "workspace_owner": owner.username, "template_version_id": str(version.id)})):
            entry.add(row)
        try:
            await self.executor.start_first(entry, FirstRun(run, session, chosen_models))
        except StoreConflict:
            raise Conflict(f'Workspace "{name}" already exists.', detail="name") from None
        status = derive_status(task, run)
        return TaskView(task=task, owner=owner, organization=org, agent=agent, version=version,
                        session=session, latest_run=run, status=status, current_state=derive_state(status, None, run))

    async def send(self, principal: Principal, view: TaskView, text: str, *, origin: Origin | None = None) -> Run:
        require(principal, Action.SEND, resource(view.task))
        if not text:
            raise Invalid("Task input is required.", field="input")
        _gate(view)
        run = view.latest_run
        if run is not None and run.status in (QUEUED, RUNNING):
            raise _NotReady("Task app is not ready to accept input.", detail="Status: running")
        if view.session is None:  # pragma: no cover - every task has its session
            raise NotFound()
        inputs = await self._form_inputs(run, text) if run is not None and run.status == "waiting" else {}
        async with self.database.session() as s:
            new_run = await RunRepository(s).create(view.session.id, task_id=view.task.id, query=text, inputs=inputs)
            await audit.record(s, principal, "send", "task", view.task.id, origin=origin,
                               organization_id=view.task.organization_id, details={"run": new_run.number})
        self.executor.submit(new_run.id)
        return new_run

    async def pause(self, principal: Principal, view: TaskView, *, origin: Origin | None = None) -> Run | None:
        require(principal, Action.PAUSE, resource(view.task))
        if view.status == "paused":
            raise Conflict("Task is already paused.", detail="Resume the task before pausing it again.")
        run = view.latest_run
        async with self.database.session() as s:
            await TaskRepository(s).set_status(view.task.id, PAUSED)
            if run is not None and run.status == QUEUED and not self.executor.is_executing(run.id):
                await RunRepository(s).set_status(run.id, PAUSED)
            await audit.record(s, principal, "pause", "task", view.task.id, origin=origin,
                               organization_id=view.task.organization_id)
        if run is not None and run.status in (QUEUED, RUNNING):
            self.executor.pause(run.id)
        return run

    async def resume(self, principal: Principal, view: TaskView, *, origin: Origin | None = None) -> Run | None:
        require(principal, Action.RESUME, resource(view.task))
        if view.status != "paused":
            raise Conflict("Task is not paused.", detail=f'Task status is "{view.status}"; only a paused task '
                                                         "can be resumed.")
        if self.executor.is_executing(view.latest_run.id if view.latest_run else uuid.UUID(int=0)):
            raise Conflict("Task is still pausing.", detail="Wait for the current component to finish.")
        run = view.latest_run
        async with self.database.session() as s:
            await TaskRepository(s).set_status(view.task.id, "active")
            if run is not None and run.status == PAUSED:
                await RunRepository(s).set_status(run.id, QUEUED)
                if run.number == 1 and run.started_at is None:
                    row = await RunRepository(s).get(run.id)
                    if row is not None:
                        row.query = view.task.prompt
            await audit.record(s, principal, "resume", "task", view.task.id, origin=origin,
                               organization_id=view.task.organization_id)
        if run is not None and run.status in (PAUSED, QUEUED):
            self.executor.submit(run.id)
        return run

    async def update_input(self, principal: Principal, view: TaskView, text: str, *,
                           origin: Origin | None = None) -> None:
        require(principal, Action.UPDATE, resource(view.task))
        if not text.strip():
            raise Invalid("Task input is required.", field="input")
        if view.status != "paused":
            raise Conflict("Unable to update task input, task must be paused.",
                           detail="Please stop the task's workspace before updating the input.")
        async with self.database.session() as s:
            task = await TaskRepository(s).get(view.task.id)
            if task is None:
                raise NotFound()
            old = task.prompt
            task.prompt = text
            task.updated_at = utcnow()
            await audit.record(s, principal, "write", "task", task.id, origin=origin,
                               organization_id=task.organization_id, details={"old": {"prompt": old},
                                                                              "new": {"prompt": text}})

    async def delete(self, principal: Principal, view: TaskView, *, origin: Origin | None = None) -> None:
        require(principal, Action.DELETE, resource(view.task))
        async with self.database.session() as s:
            task = await TaskRepository(s).get(view.task.id)
            if task is None or task.deleted_at is not None:
                raise NotFound()
            task.deleted_at = utcnow()
            await audit.record(s, principal, "delete", "task", task.id, origin=origin,
                               organization_id=task.organization_id, details={"name": task.name})
        run = view.latest_run
        if run is not None:
            self.executor.cancel(run.id, "the task was deleted")
        if view.session is not None:
            self.executor.hub.session_changed(view.session.id)  # readers following the task see it is gone
        self.executor.background(self._purge(view.task.id, run.id if run else None))

    async def purge_deleted(self) -> int:
        """Remove tasks deleted before a restart (their background removal did not finish)."""
        async with self.database.session() as s:
            ids = list(await s.scalars(select(Task.id).where(Task.deleted_at.is_not(None))))
        for task_id in ids:
            await self._purge(task_id, None)
        return len(ids)

    # ------------------------------------------------------------------ internals
    async def _purge(self, task_id: uuid.UUID, run_id: uuid.UUID | None) -> None:
        if run_id is not None:
            await self.executor.wait(run_id)
        async with self.database.session() as s:
            await TaskRepository(s).delete(task_id)

    async def _form_inputs(self, run: Run, text: str) -> dict[str, Any]:
        """A waiting form's fields from a plain-text input: a JSON object fills fields by name;
        other text fills the first field the form asks for."""
        async with self.database.session() as s:
            event = await s.scalar(select(RunEvent).where(RunEvent.run_id == run.id, RunEvent.name == "user_inputs")
                                   .order_by(RunEvent.seq.desc()).limit(1))
        fields = (event.payload.get("data") or {}).get("inputs") if event is not None else None
        if not isinstance(fields, Mapping) or not fields:
            return {}
        try:
            given = json.loads(text)
        except ValueError:
            given = None
        if isinstance(given, Mapping):
            return {k: {"value": v} for k, v in given.items() if k in fields}
        return {next(iter(fields)): {"value": text}}

    async def _views(self, tasks: Sequence[Task]) -> list[TaskView]:
        if not tasks:
            return []
        async with self.database.reading() as s:
            return await _views_in(s, tasks)


async def _views_in(s: AsyncSession, tasks: Sequence[Task]) -> list[TaskView]:
    """The views of ``tasks``, read in ``s``."""
    # ties on a state's time: the last one wins, as rows come ordered by state id
    rows = {row[0]: row[1:] for row in await s.execute(_view_statement(), {"ids": [t.id for t in tasks]})}
    views = []
    for task in tasks:
        owner, organization, agent, version, session, run, state = rows[task.id]
        status = derive_status(task, run)
        views.append(TaskView(task=task, owner=owner, organization=organization, agent=agent, version=version,
                              session=session, latest_run=run, status=status,
                              current_state=derive_state(status, state, run)))
    return views


async def _user_in(s: AsyncSession, principal: Principal, ref: str) -> User:
    users = UserRepository(s)
    if ref == "me":
        user = await user_of(s, principal)
    elif (user_id := parse_uuid(ref)) is not None:
        user = await users.get(user_id)
    else:
        user = await users.by_username(ref)
    if user is None:
        raise NotFound()
    require(principal, Action.READ, Resource(ResourceKind.USER, owner_id=user.id))
    return user


@functools.cache
def _version_statement() -> Any:
    """An agent version with its agent, the agent's organization and a user's default models
    setting, in one statement built once."""
    models = select(SiteSetting.value).where(SiteSetting.key == bindparam("models_key")).scalar_subquery()
    return (select(AgentVersion, Agent, Organization, models)
            .join(Agent, Agent.id == AgentVersion.agent_id)
            .outerjoin(Organization, Organization.id == Agent.organization_id)
            .where(AgentVersion.id == bindparam("version_id"))
            .options(_NO_DSL[0], _NO_DSL[1]))


@functools.cache
def _view_statement() -> Any:
    """One statement for everything a task's view shows (its status is read on every poll), built
    once: building it cost more than running it."""
    ids: BindParameter[list[uuid.UUID]] = bindparam("ids", expanding=True)
    latest_numbers = select(Run.task_id, func.max(Run.number).label("n")).where(
        Run.task_id.in_(ids)).group_by(Run.task_id).subquery()
    latest_run = aliased(Run, select(Run).join(
        latest_numbers, (Run.task_id == latest_numbers.c.task_id) & (Run.number == latest_numbers.c.n)).subquery())
    latest_at = select(TaskStateEntry.task_id, func.max(TaskStateEntry.created_at).label("at")).where(
        TaskStateEntry.task_id.in_(ids)).group_by(TaskStateEntry.task_id).subquery()
    latest_state = aliased(TaskStateEntry, select(TaskStateEntry).join(
        latest_at, (TaskStateEntry.task_id == latest_at.c.task_id)
        & (TaskStateEntry.created_at == latest_at.c.at)).subquery())
    return (select(Task.id, User, Organization, Agent, AgentVersion, Session, latest_run, latest_state)
            .join(User, User.id == Task.owner_id)
            .join(Agent, Agent.id == Task.agent_id)
            .join(AgentVersion, AgentVersion.id == Task.agent_version_id)
            .outerjoin(Organization, Organization.id == Task.organization_id)
            .outerjoin(Session, Session.task_id == Task.id)
            .outerjoin(latest_run, latest_run.task_id == Task.id)
            .outerjoin(latest_state, latest_state.task_id == Task.id)
            .where(Task.id.in_(ids))
            .order_by(latest_state.id)
            .options(_NO_DSL[0], _NO_DSL[1]))


_NO_DSL = (defer(Agent.dsl, raiseload=True), defer(AgentVersion.dsl, raiseload=True))
"""A task's view shows its agent's names, never the canvas: decoding a large DSL for every task
read (each poll of a task's status) would cost more than the rest of the read."""


class _NotReady(ServiceError):
    """coder answers 502 when the task's app is busy: the input cannot be taken now."""

    status_code = 502


def _gate(view: TaskView) -> None:
    """coder's checks before talking to a task's app (send, live logs)."""
    status = view.status
    if status in ("pending", "initializing"):
        raise Conflict(f"Task is {status}.",
                       detail="The task is resuming. Wait for the task to become active before sending messages.")
    if status == "paused":
        raise Conflict("Task is paused.", detail="Resume the task to send messages.")
    if status in ("error", "unknown"):
        raise Invalid("Task must be active.",
                      detail=f'Task status is "{status}", it must be "active" to interact with the task.')


def _may_read_agent(principal: Principal, agent: Agent) -> bool:
    return authorize(principal, Action.READ, agent_resource(agent)).allowed


def _version_missing(kind: type[ServiceError]) -> ServiceError:
    if kind is NotFound:
        return NotFound()
    return Invalid(VERSION_NOT_FOUND, field="template_version_id")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
