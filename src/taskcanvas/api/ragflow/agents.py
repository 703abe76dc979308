"""ragflow's agent routes: CRUD, versions, tags, templates, prompts, reset, run logs, rerun.

Messages and codes are ragflow's (``api/apps/restful_apis/agent_api.py``). An agent that does
not exist and one the caller may not see get the same answer, as ragflow's ``accessible``
check gives.
"""

from __future__ import annotations

import copy
import json
import uuid
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from taskcanvas.api.deps import OriginDep, PrincipalDep, ServicesDep
from taskcanvas.api.ragflow._common import (
    desc_flag,
    http_date,
    ident,
    json_result,
    mapping,
    ms,
    page_args,
    path_id,
    read_json,
    refuse,
    refuse_json,
    require_fields,
    truthy,
)
from taskcanvas.components import builtin_registry, prompts
from taskcanvas.service.agents import resource as agent_resource
from taskcanvas.service.errors import Invalid, NotFound
from taskcanvas.service.rbac import Action, authorize
from taskcanvas.service.services import EXAMPLES, Services
from taskcanvas.service.sessions import NO_ACCESS
from taskcanvas.store.models import Agent, AgentVersion, User
from taskcanvas.tools.base import Tool

router = APIRouter(tags=["ragflow: agents"])

CANVAS_NOT_FOUND = "canvas not found."
OWNER_ONLY = "Only the owner of the agent is authorized for this operation."
TAGS_REFUSED = "Agent not found or no permission."
_ORDER = {"create_time": "created_at", "create_date": "created_at", "update_time": "updated_at",
          "update_date": "updated_at", "title": "title"}


# ---------------------------------------------------------------------------- shapes
def nickname(user: User | None) -> str:
    return "" if user is None else (user.name or user.username)


def agent_json(agent: Agent, owner: User | None, *, dsl: bool = True,
               versions: list[AgentVersion] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": ident(agent.id), "avatar": agent.avatar, "title": agent.title, "description": agent.description,
        "permission": agent.permission, "canvas_type": agent.canvas_type or "", "canvas_category": agent.category,
        "tags": agent.tags or "", "user_id": ident(agent.owner_id), "tenant_id": ident(agent.owner_id),
        "nickname": nickname(owner), "tenant_avatar": None,
        "create_time": ms(agent.created_at), "create_date": http_date(agent.created_at),
        "update_time": ms(agent.updated_at), "update_date": http_date(agent.updated_at),
    }
    if dsl:
        data["dsl"] = agent.dsl
    if versions is not None:
        released = [v for v in versions if v.release]
        data["release_time"] = ms(released[0].created_at) if released else None
    return data


def version_json(version: AgentVersion, owner: User | None, *, dsl: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": ident(version.id), "user_canvas_id": ident(version.agent_id), "title": version_title(version, owner),
        "description": version.description, "release": version.release, "number": version.number,
        "create_time": ms(version.created_at), "create_date": http_date(version.created_at),
        "update_time": ms(version.created_at), "update_date": http_date(version.created_at),
    }
    if dsl:
        data["dsl"] = version.dsl
    return data


def version_title(version: AgentVersion, owner: User | None) -> str:
    """ragflow's ``{owner nickname}_{agent title}_{YYYY-mm-dd HH:MM:SS}``."""
    return f"{nickname(owner)}_{version.title}_{version.created_at:%Y-%m-%d %H:%M:%S}"


async def users_by_id(services: Services) -> dict[uuid.UUID, User]:
    return {u.id: u for u in await services.accounts.list_users()}


# ---------------------------------------------------------------------------- fixed routes
@router.get("/agents/templates", summary="The bundled example canvases, as ragflow's agent templates")
async def list_templates(principal: PrincipalDep) -> JSONResponse:
    templates = []
    for name, (title, description) in EXAMPLES.items():
        dsl = json.loads(resources.files("taskcanvas.examples").joinpath(name).read_text(encoding="utf-8"))
        templates.append({
            "id": uuid.uuid5(uuid.NAMESPACE_URL, f"taskcanvas:example:{name}").hex, "avatar": None,
            "title": {"en": title}, "description": {"en": description}, "canvas_type": "Agent",
            "canvas_types": ["Agent"], "canvas_category": "agent_canvas", "dsl": dsl,
        })
    return json_result(templates)


@router.get("/agents/prompts", summary="The prompt texts the Agent component adds")
async def list_prompts(principal: PrincipalDep) -> JSONResponse:
    # taskcanvas's Agent does no task analysis, planning or reflection pass: those are empty.
    return json_result({"task_analysis": "", "plan_generation": "", "reflection": "",
                        "citation_guidelines": prompts.citation_prompt().strip()})


@router.get("/agents/tags", summary="Tags of the agents the caller can see, with counts")
async def list_tags(services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    counts = await services.agents.tag_counts(principal)
    return json_result([{"tag": tag, "count": n} for tag, n in sorted(counts.items(), key=lambda x: (-x[1], x[0]))])


@router.post("/agents/rerun", summary="ragflow's pipeline rerun (no pipeline documents here)")
async def rerun(request: Request, principal: PrincipalDep) -> JSONResponse:
    body = await read_json(request)
    require_fields(body, "id", "dsl", "component_id")
    # ragflow reruns an ingestion-pipeline document; taskcanvas keeps none, so none is found.
    raise refuse(102, "Document not found.")


# ---------------------------------------------------------------------------- list and create
@router.get("/agents", summary="Agents the caller can see (newest first)")
async def list_agents(request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    args = request.query_params
    agents, _ = await services.agents.find(principal, keywords=args.get("keywords") or None, limit=100_000)
    categories = [c for c in (args.get("canvas_category") or "").split(",") if c]
    if categories:
        agents = [a for a in agents if a.category in categories]
    if args.get("canvas_type"):
        agents = [a for a in agents if (a.canvas_type or "") == args["canvas_type"]]
    tags = [t for t in (args.get("tags") or "").split(",") if t]
    if tags:
        agents = [a for a in agents if set(tags) & set((a.tags or "").split(","))]
    owners = [o for o in (args.get("owner_ids") or "").split(",") if o]
    if len(owners) > 100:
        raise refuse(101, "owner_ids must contain at most 100 IDs")
    if owners:
        wanted = {path_id(o) for o in owners}
        agents = [a for a in agents if a.owner_id in wanted]
    users = await users_by_id(services)
    if args.get("type") == "filter":
        owner_counts: dict[uuid.UUID, int] = {}
        category_counts: dict[str, int] = {}
        for a in agents:
            owner_counts[a.owner_id] = owner_counts.get(a.owner_id, 0) + 1
            category_counts[a.category] = category_counts.get(a.category, 0) + 1
        return json_result({"filter": {
            "owner": [{"id": ident(o), "label": nickname(users.get(o)), "count": n} for o, n in owner_counts.items()],
            "canvas_category": [{"id": c, "count": n} for c, n in category_counts.items()],
        }, "total": len(agents)})
    page, size = page_args(args.get("page"), args.get("page_size"))
    field = _ORDER.get(args.get("orderby") or "create_time", "created_at")
    agents.sort(key=lambda a: (getattr(a, field), a.id), reverse=desc_flag(args.get("desc")))
    total = len(agents)
    shown = agents[(page - 1) * size:page * size]
    items = []
    for agent in shown:
        versions = await services.agents.versions(principal, agent.id)
        items.append(agent_json(agent, users.get(agent.owner_id), dsl=False, versions=versions))
    return json_result({"canvas": items, "total": total})


@router.post("/agents", summary="Create an agent")
async def create_agent(request: Request, services: ServicesDep, principal: PrincipalDep,
                       origin: OriginDep) -> JSONResponse:
    body = {k: v for k, v in (await read_json(request)).items() if v is not None}
    if body.get("dsl") is None:
        raise refuse_json(101, "No DSL data in request.")
    if not isinstance(body["dsl"], (dict, str)):
        raise refuse_json(101, "DSL must be a JSON object.")
    if body.get("title") is None:
        raise refuse_json(101, "No title in request.")
    if not isinstance(body["title"], str):
        raise refuse_json(101, "The title must be a string.")
    try:
        created = await services.agents.create(
            principal, body["title"], body["dsl"], description=str(body.get("description") or ""),
            avatar=body.get("avatar"), canvas_type=body.get("canvas_type") or "",
            category=str(body.get("canvas_category") or "agent_canvas"), permission=str(body.get("permission") or "me"),
            release=truthy(body.get("release")), origin=origin)
    except Invalid as e:
        raise refuse_json(101, _invalid_text(e)) from None
    owner = await services.accounts.get_user(created.agent.owner_id)
    return json_result(agent_json(created.agent, owner))


# ---------------------------------------------------------------------------- one agent
@router.get("/agents/{agent_id}", summary="One agent with its DSL")
async def get_agent(agent_id: str, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    agent = await _readable(services, principal, agent_id, code=102, message=CANVAS_NOT_FOUND)
    versions = await services.agents.versions(principal, agent.id)
    data = agent_json(agent, await services.accounts.get_user(agent.owner_id), versions=versions)
    released = [v for v in versions if v.release]
    data["last_publish_time"] = ms(released[0].created_at) if released else None
    return json_result(data)


@router.put("/agents/{agent_id}", summary="Update an agent; `release: true` publishes")
async def update_agent(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep,
                       origin: OriginDep) -> JSONResponse:
    body = {k: v for k, v in (await read_json(request)).items() if v is not None}
    wanted = path_id(agent_id)
    if wanted is None:
        raise refuse_json(103, NO_ACCESS)
    if "dsl" in body and not isinstance(body["dsl"], (dict, str)):
        raise refuse_json(101, "DSL must be a JSON object.")
    try:
        updated = await services.agents.update(
            principal, wanted, title=_text_or_none(body.get("title")), dsl=body.get("dsl"),
            description=_text_or_none(body.get("description")), avatar=_text_or_none(body.get("avatar")),
            canvas_type=_text_or_none(body.get("canvas_type")), permission=_text_or_none(body.get("permission")),
            release=truthy(body["release"]) if "release" in body else None, origin=origin)
    except NotFound:
        raise refuse_json(103, NO_ACCESS) from None
    except Invalid as e:
        raise refuse_json(101, _invalid_text(e)) from None
    return json_result({"update_time": ms(updated.agent.updated_at)})


@router.delete("/agents/{agent_id}", summary="Delete an agent")
async def delete_agent(agent_id: str, services: ServicesDep, principal: PrincipalDep,
                       origin: OriginDep) -> JSONResponse:
    wanted = path_id(agent_id)
    if wanted is None:
        raise refuse_json(103, OWNER_ONLY)
    try:
        await services.agents.delete(principal, wanted, origin=origin)
    except NotFound:
        raise refuse_json(103, OWNER_ONLY) from None
    return json_result(True)


@router.post("/agents/{agent_id}/reset", summary="Clear the runtime state kept in an agent's DSL")
async def reset_agent(agent_id: str, services: ServicesDep, principal: PrincipalDep,
                      origin: OriginDep) -> JSONResponse:
    agent = await _readable(services, principal, agent_id)
    if not authorize(principal, Action.UPDATE, agent_resource(agent)).allowed:
        raise refuse_json(103, NO_ACCESS)
    dsl = reset_dsl(agent.dsl)
    if dsl != agent.dsl:
        try:
            await services.agents.update(principal, agent.id, dsl=dsl, origin=origin)
        except NotFound:
            raise refuse_json(103, NO_ACCESS) from None
        except Invalid as e:
            raise refuse_json(101, _invalid_text(e)) from None
    return json_result(dsl)


def reset_dsl(dsl: dict[str, Any]) -> dict[str, Any]:
    """ragflow's ``Canvas.reset()``: no path, history, retrieval or memory; ``sys.*`` globals zeroed."""
    reset = copy.deepcopy(dsl)
    for key in ("path", "history", "retrieval", "memory"):
        if key in reset:
            reset[key] = []
    glob = reset.get("globals")
    if isinstance(glob, dict):
        for key, value in glob.items():
            if key.startswith("sys."):
                glob[key] = 0 if isinstance(value, (int, float)) and not isinstance(value, bool) else (
                    [] if isinstance(value, list) else "")
    return reset


@router.get("/agents/{agent_id}/versions", summary="An agent's versions, newest first")
async def list_versions(agent_id: str, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    agent = await _readable(services, principal, agent_id)
    owner = await services.accounts.get_user(agent.owner_id)
    versions = await services.agents.versions(principal, agent.id)
    return json_result([version_json(v, owner, dsl=False) for v in versions])


@router.get("/agents/{agent_id}/versions/{version_id}", summary="One version with its DSL")
async def get_version(agent_id: str, version_id: str, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    agent = await _readable(services, principal, agent_id)
    wanted = path_id(version_id)
    try:
        found = await services.agents.version(principal, wanted) if wanted is not None else None
    except NotFound:
        found = None
    if found is None or found.agent.id != agent.id:
        raise refuse(102, "Version not found.")
    return json_result(version_json(found.version, await services.accounts.get_user(agent.owner_id), dsl=True))


@router.put("/agents/{agent_id}/tags", summary="Replace an agent's tags")
async def set_tags(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep,
                   origin: OriginDep) -> JSONResponse:
    body = await read_json(request)
    wanted = path_id(agent_id)
    if wanted is None:
        raise refuse_json(103, TAGS_REFUSED)
    tags = body.get("tags", "")
    if not isinstance(tags, (str, list)):
        tags = str(tags)
    try:
        await services.agents.set_tags(principal, wanted, [str(t) for t in tags] if isinstance(tags, list) else tags,
                                       origin=origin)
    except NotFound:
        raise refuse_json(103, TAGS_REFUSED) from None
    return json_result(True)


@router.get("/agents/{agent_id}/logs/{message_id}", summary="Tool calls of one run, from its stored events")
async def run_logs(agent_id: str, message_id: str, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    sessions = services.sessions
    events = await sessions.run_events(principal, path_id(agent_id), message_id)
    traces = tool_traces(events)
    return json_result(traces if traces else {})


def tool_traces(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """ragflow's ``[{component_id, trace: [{path, tool_name, arguments, result, elapsed_time}]}]`` for the
    tool components (ExeSQL, TavilySearch, ...) that ran as nodes of the canvas."""
    registry = builtin_registry()
    traces: list[dict[str, Any]] = []
    for event in events:
        data = event.get("data")
        if event.get("event") != "node_finished" or not isinstance(data, dict):
            continue
        cls = registry.get(str(data.get("component_type", "")))
        if cls is None or not issubclass(cls, Tool):
            continue
        outputs = mapping(data.get("outputs"))
        traces.append({"component_id": data.get("component_id"), "trace": [{
            "path": [data.get("component_id")], "tool_name": cls.meta.get("name", cls.component_name),
            "arguments": data.get("inputs") or {},
            "result": {k: v for k, v in outputs.items() if not str(k).startswith("_")},
            "elapsed_time": data.get("elapsed_time"),
        }]})
    return traces


# ---------------------------------------------------------------------------- helpers
async def _readable(services: Services, principal: Any, agent_id: str, *, code: int = 103,
                    message: str = NO_ACCESS) -> Agent:
    wanted = path_id(agent_id)
    try:
        if wanted is None:
            raise NotFound()
        return await services.agents.get(principal, wanted)
    except NotFound:
        raise (refuse_json(code, message) if code == 103 else refuse(code, message)) from None


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _invalid_text(error: Invalid) -> str:
    return f"{error.message} {error.detail}" if error.detail else error.message
