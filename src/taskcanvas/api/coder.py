"""coder's Tasks API, current era (``/api/v2``): tasks, templates, users and tokens, the audit log.

A coder client (the ``coder`` CLI, ``codersdk``, scripts written against coder's API reference)
works against taskcanvas unchanged: same routes, same JSON, same status codes and messages. What
coder's words mean here (a template is an agent, a workspace a task's session, a build a run) is
in :mod:`taskcanvas.api.coder_shapes` and docs/compat.md, "coder faces".

One route is ours: ``GET /tasks/{user}/{task}/events``, the task's run events as Server-Sent
Events (ids ``<run number>.<sequence>``; ``Last-Event-ID`` resumes without gap or repeat).

The handlers here are also mounted under ``/api/experimental`` (:mod:`taskcanvas.api.experimental`).
"""

from __future__ import annotations

import datetime
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from taskcanvas import __version__
from taskcanvas.api import coder_shapes as shapes
from taskcanvas.api.deps import OriginDep, PrincipalDep, ServicesDep
from taskcanvas.execution import follow as follow_run
from taskcanvas.execution import stored as stored_events
from taskcanvas.service import audit
from taskcanvas.service.auth import API_TOKEN_LIFETIME, Principal
from taskcanvas.service.errors import Invalid, NotFound
from taskcanvas.service.rbac import Action, Resource, ResourceKind, require
from taskcanvas.service.search import TASK_QUERY_INVALID, parse_task_query
from taskcanvas.service.services import Services
from taskcanvas.service.tasks import TaskFilter, TaskView
from taskcanvas.store.models import Organization, User

router = APIRouter(tags=["coder"])

PING_SECONDS = 15.0
"""Keep-alive comments on an idle event stream (proxies close silent connections)."""
SESSION_POLL_SECONDS = 5.0
"""An event stream looks for new runs at least this often, whatever the hub says."""
_INT32_MAX = 2**31 - 1
_MAX_TOKEN_LIFETIME = datetime.timedelta(days=365 * 100)


# ---------------------------------------------------------------------------- request bodies


class CreateTaskRequest(BaseModel):
    """coder's ``CreateTaskRequest``."""

    template_version_id: uuid.UUID | None = None
    template_version_preset_id: uuid.UUID | None = None
    input: str = ""
    name: str = ""
    display_name: str = ""


class TaskInputRequest(BaseModel):
    """coder's ``TaskSendRequest`` and ``UpdateTaskInputRequest``."""

    input: str = ""


class LoginRequest(BaseModel):
    """coder's ``LoginWithPasswordRequest``; ``email`` may also hold a username."""

    email: str = ""
    password: str = ""


class CreateTokenRequest(BaseModel):
    """coder's ``CreateTokenRequest``; ``lifetime`` is a Go duration: nanoseconds."""

    token_name: str = ""
    lifetime: int = 0
    scope: str = ""
    scopes: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------- helpers


def ref(value: str) -> str:
    """A path or query reference; one no name or id can hold (a NUL) is simply not found."""
    if "\x00" in value:
        raise NotFound()
    return value


def quote(value: str) -> str:
    """Go's ``%q`` for the texts coder quotes in its messages."""
    return json.dumps(value, ensure_ascii=False)


def go_uuid_error(raw: str) -> str:
    """What Go's ``uuid.Parse`` says about a string it refuses."""
    if len(raw) not in (32, 36, 38, 45):
        return f"invalid UUID length: {len(raw)}"
    return "invalid UUID format"


def parse_uuid(raw: str) -> uuid.UUID | None:
    """A UUID in one of the forms Go's ``uuid.Parse`` reads (dashed, braced, ``urn:uuid:``, 32 hex)."""
    text = raw
    if len(text) == 45 and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    elif len(text) == 38 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    if len(text) == 36:
        if any(text[i] != "-" for i in (8, 13, 18, 23)):
            return None
        text = text.replace("-", "")
    if len(text) != 32 or not re.fullmatch(r"[0-9a-fA-F]{32}", text):
        return None
    return uuid.UUID(hex=text)


def uuid_param(raw: str) -> uuid.UUID:
    """coder's ``ParseUUIDParam``: 400 ``Invalid UUID "<raw>".`` for anything else."""
    parsed = parse_uuid(raw)
    if parsed is None:
        raise Invalid(f"Invalid UUID {quote(raw)}.", detail=go_uuid_error(raw))
    return parsed


def pagination(limit: str | None, offset: str | None) -> tuple[int, int]:
    """coder's ``ParsePagination``: non-negative 32-bit ``limit`` (0: all) and ``offset``."""
    values: dict[str, int] = {}
    problems: list[tuple[str, str]] = []
    for name, raw in (("limit", limit), ("offset", offset)):
        if raw is None or raw == "":
            values[name] = 0
            continue
        number = int(raw) if re.fullmatch(r"[0-9]{1,10}", raw) else -1
        if number < 0 or number > _INT32_MAX:
            problems.append((name, f"Query param {quote(name)} must be a valid 32-bit positive integer"))
            number = 0
        values[name] = number
    if problems:
        raise Invalid("Query parameters have invalid values.", validations=problems)
    return values["limit"], values["offset"]


async def owner_id(services: Services, principal: Principal, value: str, message: str) -> uuid.UUID:
    """A search query's ``owner:`` (``me``, a user id, a username), refused in coder's words."""
    if value == "me":
        return principal.user_id
    parsed = parse_uuid(value)
    if parsed is not None:
        return parsed
    try:
        return (await services.tasks.resolve_user(principal, ref(value))).id
    except NotFound:
        raise Invalid(message, validations=[(
            "owner", f"Query param {quote('owner')} has invalid value: user {quote(value)} either does not exist, "
                     "or you are unauthorized to view them")]) from None


async def organization_id(services: Services, principal: Principal, value: str, message: str) -> uuid.UUID:
    """A search query's ``organization:`` (a name or an id), refused in coder's words."""
    try:
        return (await services.tasks.resolve_organization(principal, ref(value))).id
    except NotFound:
        raise Invalid(message, validations=[(
            "organization", f"Query param {quote('organization')} has invalid value: organization {quote(value)} "
                            "either does not exist, or you are unauthorized to view it")]) from None


async def task_view(services: Services, principal: Principal, user: str, task: str) -> TaskView:
    """The ``{user}/{task}`` of a route: a task id (any owner) or a name among ``user``'s tasks."""
    return await services.tasks.get(principal, ref(user), ref(task))


# ---------------------------------------------------------------------------- tasks


@router.get("/tasks", summary="List tasks", response_model=None)
async def tasks_list(services: ServicesDep, principal: PrincipalDep, q: str = "") -> dict[str, Any]:
    query = parse_task_query(q)
    wanted = TaskFilter(status=query.status)
    if query.owner is not None:
        wanted.owner_id = await owner_id(services, principal, query.owner, TASK_QUERY_INVALID)
    if query.organization is not None:
        wanted.organization_id = await organization_id(services, principal, query.organization, TASK_QUERY_INVALID)
    views = await services.tasks.find(principal, wanted)
    return {"tasks": [shapes.task(v) for v in views], "count": len(views)}


@router.post("/tasks/{user}", status_code=201, summary="Create a task", response_model=None)
async def tasks_create(user: str, body: CreateTaskRequest, services: ServicesDep, principal: PrincipalDep,
                       origin: OriginDep) -> dict[str, Any]:
    view = await services.tasks.create(principal, ref(user), body.template_version_id, prompt=body.input,
                                       name=body.name or None, display_name=body.display_name or None,
                                       preset_id=body.template_version_preset_id, origin=origin)
    return shapes.task(view)


@router.get("/tasks/{user}/{task}", summary="Get a task by id or name", response_model=None)
async def task_get(user: str, task: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    return shapes.task(await task_view(services, principal, user, task))


@router.delete("/tasks/{user}/{task}", status_code=202, summary="Delete a task", response_class=Response)
async def task_delete(user: str, task: str, services: ServicesDep, principal: PrincipalDep,
                      origin: OriginDep) -> Response:
    view = await task_view(services, principal, user, task)
    await services.tasks.delete(principal, view, origin=origin)
    return Response(status_code=202)


@router.patch("/tasks/{user}/{task}/input", status_code=204, summary="Change a paused task's prompt",
              response_class=Response)
async def task_update_input(user: str, task: str, body: TaskInputRequest, services: ServicesDep,
                            principal: PrincipalDep, origin: OriginDep) -> Response:
    view = await task_view(services, principal, user, task)
    await services.tasks.update_input(principal, view, body.input, origin=origin)
    return Response(status_code=204)


@router.post("/tasks/{user}/{task}/send", status_code=204, summary="Send input to a task", response_class=Response)
async def task_send(user: str, task: str, body: TaskInputRequest, services: ServicesDep, principal: PrincipalDep,
                    origin: OriginDep) -> Response:
    view = await task_view(services, principal, user, task)
    await services.tasks.send(principal, view, body.input, origin=origin)
    return Response(status_code=204)


@router.get("/tasks/{user}/{task}/logs", summary="A task's conversation", response_model=None)
async def task_logs(user: str, task: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    view = await task_view(services, principal, user, task)
    return shapes.logs(await services.tasks.logs(principal, view))


@router.post("/tasks/{user}/{task}/pause", status_code=202, summary="Pause a task", response_model=None)
async def task_pause(user: str, task: str, services: ServicesDep, principal: PrincipalDep,
                     origin: OriginDep) -> dict[str, Any]:
    view = await task_view(services, principal, user, task)
    await services.tasks.pause(principal, view, origin=origin)
    fresh = await services.tasks.get_by_id(principal, view.task.id)
    return {"workspace_build": shapes.workspace_build(fresh, transition="stop", reason="task_manual_pause")}


@router.post("/tasks/{user}/{task}/resume", status_code=202, summary="Resume a paused task", response_model=None)
async def task_resume(user: str, task: str, services: ServicesDep, principal: PrincipalDep,
                      origin: OriginDep) -> dict[str, Any]:
    view = await task_view(services, principal, user, task)
    await services.tasks.resume(principal, view, origin=origin)
    fresh = await services.tasks.get_by_id(principal, view.task.id)
    return {"workspace_build": shapes.workspace_build(fresh, transition="start", reason="task_resume")}


# ---------------------------------------------------------------------------- the events stream


def parse_event_id(raw: str) -> tuple[int, int]:
    """``<run number>.<sequence>`` (what the stream's ids are); empty means from the start."""
    raw = raw.strip()
    if not raw:
        return 0, 0
    match = re.fullmatch(r"(\d{1,10})\.(\d{1,10})", raw)
    if match is None or int(match[1]) > _INT32_MAX or int(match[2]) > _INT32_MAX:
        raise Invalid(f"Invalid event id {quote(raw)}.", field="Last-Event-ID",
                      detail='An event id is "<run number>.<sequence>", as the stream sent it, e.g. "1.5".')
    return int(match[1]), int(match[2])


@router.get("/tasks/{user}/{task}/events", summary="A task's run events as Server-Sent Events",
            response_class=EventSourceResponse,
            description="Every event of every run of the task, in order (``id: <run>.<seq>``, ``event:`` the "
                        "ragflow event name, ``data:`` its JSON), then new ones as they happen. Resume with "
                        "``Last-Event-ID`` (or ``?after=``); ``?follow=false`` sends what is stored and ends.")
async def task_events(user: str, task: str, request: Request, services: ServicesDep, principal: PrincipalDep,
                      after: Annotated[str | None, Query()] = None,
                      follow: Annotated[bool, Query()] = True) -> EventSourceResponse:
    view = await task_view(services, principal, user, task)
    start = parse_event_id(request.headers.get("last-event-id") or after or "")
    return EventSourceResponse(_events(services, principal, view, start, live=follow), ping=PING_SECONDS,
                               headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def _events(services: Services, principal: Principal, view: TaskView, start: tuple[int, int], *,
                  live: bool) -> AsyncIterator[ServerSentEvent]:
    """The task's runs in order, each from after the cursor; then, live, new runs and resumed ones.

    A client that goes away only stops this reader: the runs go on.
    """
    if view.session is None:  # pragma: no cover - every task has its session
        return
    session_id = view.session.id
    run_number, seq = start
    current: TaskView | None = view  # read just now by the route: the first look needs no second read
    while True:
        # Listen for new runs before looking, so one starting meanwhile is not missed.
        waiter = services.hub.listen(session_id) if live else None
        try:
            try:
                current = current or await services.tasks.get_by_id(principal, view.task.id)
                latest = current.latest_run
                # A session's runs are numbered from 1: a task on its first run has no other to read.
                runs = [latest] if latest is not None and latest.number == 1 else \
                    await services.tasks.runs(principal, current)
                current = None
            except NotFound:
                return  # deleted (or no longer visible): the stream ends
            for run in runs:
                if run.number < run_number:
                    continue
                source = (follow_run(services.database, services.hub, run.id, session_id,
                                 after=seq if run.number == run_number else 0) if live
                          else stored_events(services.database, run.id, seq if run.number == run_number else 0))
                try:
                    async for number, event in source:
                        yield ServerSentEvent(data=json.dumps(event, ensure_ascii=False),
                                              event=str(event.get("event") or "message"), id=f"{run.number}.{number}")
                        run_number, seq = run.number, number
                finally:  # a client leaving unsubscribes at once, not when the reader is collected
                    aclose = getattr(source, "aclose", None)
                    if aclose is not None:
                        await aclose()
            if waiter is None:
                return
            await services.hub.wait(waiter, SESSION_POLL_SECONDS)
        finally:
            if waiter is not None:
                services.hub.forget(session_id, waiter)


# ---------------------------------------------------------------------------- templates


class _Lookups:
    """Users and organizations a listing names, each read once per request."""

    def __init__(self, services: Services, principal: Principal) -> None:
        self.services = services
        self.principal = principal
        self._users: dict[uuid.UUID, User | None] = {}
        self._orgs: dict[uuid.UUID, Organization | None] = {}

    async def user(self, user_id: uuid.UUID | None) -> User | None:
        if user_id is None:
            return None
        if user_id not in self._users:
            self._users[user_id] = await self.services.accounts.get_user(user_id)
        return self._users[user_id]

    async def organization(self, org_id: uuid.UUID | None) -> Organization | None:
        if org_id is None:
            return None
        if org_id not in self._orgs:
            try:
                self._orgs[org_id] = await self.services.tasks.resolve_organization(self.principal, str(org_id))
            except NotFound:
                self._orgs[org_id] = None
        return self._orgs[org_id]

    @property
    def organizations(self) -> dict[uuid.UUID, Organization]:
        return {k: v for k, v in self._orgs.items() if v is not None}


_TEMPLATE_QUERY_INVALID = "Invalid template search query."


def _template_query(q: str) -> dict[str, str]:
    """The subset of coder's template search the task clients use: ``has-ai-task:``, ``exact_name:``,
    ``name:`` (bare words too), ``deprecated:``."""
    wanted: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    bare: list[str] = []
    for token in q.lower().split():
        key, sep, value = token.partition(":")
        if not sep:
            bare.append(token)
        elif key in ("has-ai-task", "exact_name", "name", "deprecated"):
            wanted[key] = value.strip('"')
        else:
            problems.append((key, f"{quote(key)} is not a valid query param"))
    if problems:
        raise Invalid(_TEMPLATE_QUERY_INVALID, validations=problems)
    if bare and "name" not in wanted:
        wanted["name"] = " ".join(bare)
    return wanted


@router.get("/templates", summary="Templates: the agents the caller may use", response_model=None)
async def templates_list(services: ServicesDep, principal: PrincipalDep, q: str = "") -> list[dict[str, Any]]:
    wanted = _template_query(q)
    agents, _ = await services.agents.find(principal, limit=100_000)
    if wanted.get("has-ai-task") in ("false", "0", "f") or wanted.get("deprecated") in ("true", "1", "t"):
        agents = []
    if "exact_name" in wanted:
        agents = [a for a in agents if shapes.template_name(a.title) == wanted["exact_name"]]
    if wanted.get("name"):
        agents = [a for a in agents if wanted["name"] in shapes.template_name(a.title)
                  or wanted["name"] in a.title.lower()]
    lookups = _Lookups(services, principal)
    out = []
    for agent in agents:
        versions = await services.agents.versions(principal, agent.id)
        out.append(shapes.template((agent, versions[0] if versions else None), creator=await lookups.user(
            agent.owner_id), organization=await lookups.organization(agent.organization_id)))
    out.sort(key=lambda t: (t["name"], t["id"]))
    return out


@router.get("/templates/{template}", summary="A template", response_model=None)
async def template_get(template: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    agent = await services.agents.get(principal, uuid_param(template))
    versions = await services.agents.versions(principal, agent.id)
    lookups = _Lookups(services, principal)
    return shapes.template((agent, versions[0] if versions else None), creator=await lookups.user(agent.owner_id),
                           organization=await lookups.organization(agent.organization_id))


@router.get("/templates/{template}/versions", summary="A template's versions, oldest first", response_model=None)
async def template_versions(template: str, services: ServicesDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    agent = await services.agents.get(principal, uuid_param(template))
    lookups = _Lookups(services, principal)
    versions = sorted(await services.agents.versions(principal, agent.id), key=lambda v: v.number)
    return [shapes.template_version(agent, v, creator=await lookups.user(v.created_by)) for v in versions]


@router.get("/templateversions/{templateversion}", summary="A template version", response_model=None)
async def template_version_get(templateversion: str, services: ServicesDep,
                               principal: PrincipalDep) -> dict[str, Any]:
    found = await services.agents.version(principal, uuid_param(templateversion))
    creator = await _Lookups(services, principal).user(found.version.created_by)
    return shapes.template_version(found.agent, found.version, creator=creator)


@router.get("/templateversions/{templateversion}/presets", summary="A template version's presets",
            response_model=None)
async def template_version_presets(templateversion: str, services: ServicesDep,
                                   principal: PrincipalDep) -> list[dict[str, Any]]:
    return [shapes.preset(p) for p in await services.tasks.presets(principal, uuid_param(templateversion))]


# ---------------------------------------------------------------------------- users and tokens


@router.get("/buildinfo", summary="Version of this server (no sign-in needed)", response_model=None)
async def buildinfo(request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {"external_url": base, "version": f"v{__version__}", "dashboard_url": base, "workspace_proxy": False,
            "agent_api_version": "", "provisioner_api_version": "", "upgrade_message": "", "deployment_id": "",
            "webpush_public_key": "", "telemetry": False}


@router.post("/users/login", status_code=201, summary="Sign in with a password", response_model=None)
async def users_login(body: LoginRequest, services: ServicesDep, origin: OriginDep) -> dict[str, Any]:
    result = await services.accounts.login(body.email, body.password, ip=origin.ip, user_agent=origin.user_agent)
    return {"session_token": result.token}


@router.post("/users/logout", summary="End the session (or revoke the token) the request came with",
             response_model=None)
async def users_logout(services: ServicesDep, principal: PrincipalDep, origin: OriginDep) -> dict[str, Any]:
    await services.accounts.logout(principal, ip=origin.ip)
    return {"message": "Logged out!"}


async def _user(services: Services, principal: Principal, value: str) -> User:
    return await services.tasks.resolve_user(principal, ref(value))


@router.get("/users/{user}", summary="A user (`me` for the caller)", response_model=None)
async def users_get(user: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    row = await _user(services, principal, user)
    grants = principal if row.id == principal.user_id else await services.accounts.principal_for(row.id)
    return shapes.user(row, grants)


async def _token_owner(services: Services, principal: Principal, value: str) -> User:
    row = await _user(services, principal, value)
    require(principal, Action.MANAGE_TOKENS, Resource(ResourceKind.TOKEN, owner_id=row.id))
    return row


@router.get("/users/{user}/keys/tokens", summary="A user's API tokens", response_model=None)
async def tokens_list(user: str, services: ServicesDep, principal: PrincipalDep) -> list[dict[str, Any]]:
    owner = await _token_owner(services, principal, user)
    return [shapes.api_key(t, username=owner.username) for t in await services.accounts.list_tokens(owner.id)]


@router.post("/users/{user}/keys/tokens", status_code=201, summary="Create an API token", response_model=None)
async def tokens_create(user: str, body: CreateTokenRequest, services: ServicesDep, principal: PrincipalDep,
                        origin: OriginDep) -> dict[str, Any]:
    owner = await _token_owner(services, principal, user)
    lifetime = API_TOKEN_LIFETIME
    if body.lifetime:
        if body.lifetime < 0 or body.lifetime // 1000 > _MAX_TOKEN_LIFETIME // datetime.timedelta(microseconds=1):
            raise Invalid("Failed to validate create API key request.", field="lifetime",
                          detail=f"lifetime must be positive and at most {_MAX_TOKEN_LIFETIME.days} days")
        lifetime = datetime.timedelta(microseconds=max(1, body.lifetime // 1000))
    name = body.token_name.strip() or f"{owner.username}-{secrets.token_hex(3)}"
    _, token = await services.accounts.create_token(owner.id, name, lifetime=lifetime, actor=principal, ip=origin.ip)
    return {"key": token}


@router.delete("/users/{user}/keys/tokens/{name}", status_code=204, summary="Revoke an API token by name",
               response_class=Response)
async def tokens_delete(user: str, name: str, services: ServicesDep, principal: PrincipalDep,
                        origin: OriginDep) -> Response:
    owner = await _token_owner(services, principal, user)
    if not await services.accounts.revoke_token(owner.id, ref(name), actor=principal, ip=origin.ip):
        raise NotFound()
    return Response(status_code=204)


@router.delete("/users/{user}/keys/{keyid}", status_code=204, summary="Revoke an API token by its key id",
               response_class=Response)
async def keys_delete(user: str, keyid: str, services: ServicesDep, principal: PrincipalDep,
                      origin: OriginDep) -> Response:
    return await tokens_delete(user, keyid, services, principal, origin)


# ---------------------------------------------------------------------------- audit

_AUDIT_QUERY_INVALID = "Invalid audit search query."


@router.get("/audit", summary="The audit log, newest first (owners and auditors)", response_model=None)
async def audit_logs(services: ServicesDep, principal: PrincipalDep, q: str = "", limit: str | None = None,
                     offset: str | None = None) -> dict[str, Any]:
    size, skip = pagination(limit, offset)
    filters: dict[str, str] = {}
    for token in q.lower().split():
        key, sep, value = token.partition(":")
        if not sep or key not in ("action", "resource_type"):
            raise Invalid(_AUDIT_QUERY_INVALID, validations=[(key, f"{quote(key)} is not a valid query param")])
        filters[key] = value.strip('"')
    action = ref(filters.get("action", "")) or None
    resource_type = ref(filters.get("resource_type", "")) or None
    rows = await audit.entries(services.database, principal, limit=size or 100, offset=skip, action=action,
                               resource_type=resource_type)
    count = await audit.count(services.database, principal, action=action, resource_type=resource_type)
    lookups = _Lookups(services, principal)
    actors: dict[uuid.UUID, dict[str, Any] | None] = {}
    for actor_id in shapes.ids(r.actor_id for r in rows):
        row = await lookups.user(actor_id)
        actors[actor_id] = None if row is None else shapes.user(row, await services.accounts.principal_for(row.id))
    for org_id in shapes.ids(r.organization_id for r in rows):
        await lookups.organization(org_id)
    return {"audit_logs": [shapes.audit_log(r, actor=actors.get(r.actor_id) if r.actor_id else None,
                                            organizations=lookups.organizations) for r in rows],
            "count": count}
