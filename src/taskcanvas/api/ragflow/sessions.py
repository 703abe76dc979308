"""ragflow's agent session routes (``/agents/<id>/sessions``) and task cancel (``/tasks/<id>``).

Session JSON follows ragflow's ``_normalize_agent_session``: ``agent_id`` (ragflow's SDK decides a
session is an agent session by that key), ``message`` (the conversation), ``user_id`` (the
free-text id the client gave, else the caller's account id), times in milliseconds. ``dsl`` is
the DSL of the agent version the session runs. ``GET .../sessions/<sid>`` also carries
``dialog_id`` and ``reference`` as ragflow's raw row does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from taskcanvas.api.deps import OriginDep, PrincipalDep, ServicesDep
from taskcanvas.api.ragflow._common import (
    desc_flag,
    http_date,
    ident,
    json_result,
    ms,
    page_args,
    path_id,
    read_json,
    refuse,
    require_fields,
    result,
    truthy,
    with_refusals,
)
from taskcanvas.service.auth import Principal
from taskcanvas.service.sessions import SessionView

router = APIRouter(tags=["ragflow: sessions"])


def session_json(view: SessionView, principal: Principal, *, dsl: bool = True, raw: bool = False) -> dict[str, Any]:
    row = view.session
    user = row.external_user or ident(row.user_id) or ident(principal.user_id)
    messages = [{k: v for k, v in m.items() if k != "prompt"} for m in row.messages if isinstance(m, dict)]
    run = view.latest_run
    data: dict[str, Any] = {
        "id": ident(row.id), "agent_id": ident(row.agent_id), "name": row.name, "user_id": user,
        "exp_user_id": user, "message": messages, "source": row.source,
        "version_title": _version_title(view), "round": run.number if run is not None else 0,
        "errors": run.error if run is not None and run.error else None, "tokens": 0, "duration": 0,
        "thumb_up": 0, "create_time": ms(row.created_at), "create_date": http_date(row.created_at),
        "update_time": ms(row.updated_at), "update_date": http_date(row.updated_at),
        "status": run.status if run is not None else None,
    }
    if dsl:
        data["dsl"] = view.version.dsl if view.version is not None else {}
    if raw:
        data["dialog_id"] = data["agent_id"]
        data["reference"] = list(row.references)
    return data


def _version_title(view: SessionView) -> str | None:
    version = view.version
    if version is None:
        return None
    return f"{view.agent.title}_v{version.number}_{version.created_at:%Y-%m-%d %H:%M:%S}"


@router.post("/agents/{agent_id}/sessions", summary="Start a session with an agent (its prologue first)")
@with_refusals
async def create_session(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep,
                         origin: OriginDep) -> JSONResponse:
    body = await read_json(request)
    args = request.query_params
    user_id = body.get("user_id") or args.get("user_id")
    release = truthy(body.get("release", args.get("release", False)))
    name = body.get("name", "")
    view = await services.sessions.create_session(
        principal, path_id(agent_id), name=name if isinstance(name, str) else str(name),
        user_id=str(user_id) if user_id else None, release=release, origin=origin)
    return result(session_json(view, principal))


@router.get("/agents/{agent_id}/sessions", summary="The caller's sessions with an agent")
@with_refusals
async def list_sessions(agent_id: str, request: Request, services: ServicesDep,
                        principal: PrincipalDep) -> JSONResponse:
    args = request.query_params
    page, size = page_args(args.get("page"), args.get("page_size"))
    sessions = services.sessions
    views, total = await sessions.list_sessions(
        principal, path_id(agent_id), page=page, page_size=size, orderby=args.get("orderby") or "update_time",
        desc=desc_flag(args.get("desc")), session_id=args.get("id") or None,
        user_id=args.get("user_id") or args.get("exp_user_id") or None, keywords=args.get("keywords") or None)
    if args.get("exp_user_id"):
        data: list[dict[str, Any]] = [{"id": ident(v.session.id), "name": v.session.name} for v in views]
        return JSONResponse({"code": 0, "message": "success", "data": data, "total": total})
    include_dsl = (args.get("dsl") or "").lower() != "false"
    data = [session_json(v, principal, dsl=include_dsl) for v in views]
    return JSONResponse({"code": 0, "message": "success", "data": data, "total": total})


@router.get("/agents/{agent_id}/sessions/{session_id}", summary="One of the caller's sessions")
@with_refusals
async def get_session(agent_id: str, session_id: str, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    view = await services.sessions.get_session(principal, path_id(agent_id), path_id(session_id))
    return json_result(session_json(view, principal, raw=True))


@router.delete("/agents/{agent_id}/sessions/{session_id}", summary="Delete one of the caller's sessions")
@with_refusals
async def delete_session(agent_id: str, session_id: str, services: ServicesDep, principal: PrincipalDep,
                         origin: OriginDep) -> JSONResponse:
    await services.sessions.delete_session(principal, path_id(agent_id), path_id(session_id), origin=origin)
    return json_result(True)


@router.delete("/agents/{agent_id}/sessions", summary="Delete sessions: `ids` in the JSON body, or `delete_all`")
@with_refusals
async def delete_sessions(agent_id: str, request: Request, services: ServicesDep, principal: PrincipalDep,
                          origin: OriginDep) -> JSONResponse:
    body = await read_json(request)
    sessions = services.sessions
    if not body:
        # ragflow checks the agent first, then does nothing for an empty body.
        await sessions.delete_sessions(principal, path_id(agent_id), None, origin=origin)
        return result()
    ids = body.get("ids")
    if ids is not None and not isinstance(ids, list):
        ids = [ids]
    done = await sessions.delete_sessions(principal, path_id(agent_id), ids,
                                          delete_all=body.get("delete_all") is True, origin=origin)
    problems = done.errors or done.duplicates
    if problems:
        if done.count:
            message = f"Partially deleted {done.count} sessions with {len(problems)} errors"
            return JSONResponse({"code": 0, "message": message,
                                 "data": {"success_count": done.count, "errors": problems}})
        raise refuse(102, ("; " if done.errors else ";").join(problems))
    return result()


# ---------------------------------------------------------------------------- cancel
@router.post("/tasks/{task_id}/cancel", summary="Stop the running turn of a session (task id = session id)")
@with_refusals
async def cancel_task(task_id: str, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    await services.sessions.cancel(principal, task_id)
    return json_result(True)


@router.patch("/tasks/{task_id}", summary='`{"action": "stop"}`: the same as POST /tasks/<id>/cancel')
@with_refusals
async def patch_task(task_id: str, request: Request, services: ServicesDep, principal: PrincipalDep) -> JSONResponse:
    body = await read_json(request)
    require_fields(body, "action")
    action = body.get("action")
    if action != "stop":
        raise refuse(101, f"Invalid action '{action}'. Only 'stop' is supported.", with_data=True)
    await services.sessions.cancel(principal, task_id)
    return json_result(True)

