"""coder's Tasks API as the seed era had it (``/api/experimental``), over the same service.

The seed's contract (coder v2.24–v2.27, "workspace-as-task") stays as its clients knew it:

- ``GET /aitasks/prompts?build_ids=`` — the input that started each run ("build");
- ``POST /tasks/{user}`` with ``prompt`` (``input`` accepted too), ``GET /tasks`` with coder's
  *workspace* search syntax and ``limit``/``offset``, ``GET|DELETE /tasks/{user}/{id}`` where
  ``{id}`` must be a UUID;
- the seed's ``Task`` JSON (:func:`taskcanvas.api.coder_shapes.seed_task`), whose ``status`` is a
  workspace build status.

The current era's routes on one task (send, logs, pause, resume, input, events) are the
``/api/v2`` handlers mounted here again, as coder kept them under this prefix.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from taskcanvas.api import coder
from taskcanvas.api import coder_shapes as shapes
from taskcanvas.api.deps import OriginDep, PrincipalDep, ServicesDep
from taskcanvas.service.errors import Invalid, NotFound
from taskcanvas.service.search import WORKSPACE_QUERY_INVALID, parse_workspace_query
from taskcanvas.service.tasks import TaskFilter

router = APIRouter(tags=["coder (experimental)"])


class SeedCreateTaskRequest(BaseModel):
    """The seed's ``CreateTaskRequest``: ``prompt`` (or the current era's ``input``) and an optional ``name``."""

    template_version_id: uuid.UUID | None = None
    template_version_preset_id: uuid.UUID | None = None
    prompt: str | None = None
    input: str | None = None
    name: str = ""


def _task_id(raw: str) -> uuid.UUID:
    parsed = coder.parse_uuid(raw)
    if parsed is None:
        raise Invalid(f"Invalid UUID {coder.quote(raw)} for task ID.")
    return parsed


@router.get("/aitasks/prompts", summary="The input that started each run (seed era)", response_model=None)
async def aitasks_prompts(services: ServicesDep, principal: PrincipalDep,
                          build_ids: str | None = None) -> dict[str, Any]:
    if not build_ids:
        raise Invalid("build_ids query parameter is required")
    run_ids = []
    for raw in build_ids.split(","):
        parsed = coder.parse_uuid(raw.strip())
        if parsed is None:
            raise Invalid(f"Invalid build ID format: {raw}", detail=coder.go_uuid_error(raw.strip()))
        run_ids.append(parsed)
    prompts = await services.tasks.prompts(principal, run_ids)
    return {"prompts": {str(run_id): prompt for run_id, prompt in prompts.items()}}


@router.post("/tasks/{user}", status_code=201, summary="Create a task (seed era)", response_model=None)
async def seed_tasks_create(user: str, body: SeedCreateTaskRequest, services: ServicesDep, principal: PrincipalDep,
                            origin: OriginDep) -> dict[str, Any]:
    prompt = body.prompt if body.prompt is not None else (body.input or "")
    view = await services.tasks.create(principal, coder.ref(user), body.template_version_id, prompt=prompt,
                                       name=body.name or None, preset_id=body.template_version_preset_id,
                                       seed_naming=True, missing_version=NotFound, origin=origin)
    return shapes.seed_task(view)


@router.get("/tasks", summary="List tasks with coder's workspace search (seed era)", response_model=None)
async def seed_tasks_list(services: ServicesDep, principal: PrincipalDep, q: str = "", limit: str | None = None,
                          offset: str | None = None) -> dict[str, Any]:
    size, skip = coder.pagination(limit, offset)
    query = parse_workspace_query(q)
    wanted = TaskFilter(name_contains=query.name)
    empty = {"tasks": [], "count": 0}
    if query.owner is not None:
        # The workspace dialect matches owners by name: one nobody has simply matches nothing.
        try:
            wanted.owner_id = (principal.user_id if query.owner == "me"
                               else (await services.tasks.resolve_user(principal, coder.ref(query.owner))).id)
        except NotFound:
            return empty
    if query.organization is not None:
        wanted.organization_id = await coder.organization_id(services, principal, query.organization,
                                                             WORKSPACE_QUERY_INVALID)
    if query.template is not None:
        agents, _ = await services.agents.find(principal, limit=100_000)
        wanted.agent_ids = {a.id for a in agents if query.template in (shapes.template_name(a.title),
                                                                       a.title.lower())}
    views = await services.tasks.find(principal, wanted)
    if query.status is not None:
        views = [v for v in views if shapes.workspace_status(v) == query.status]
    page = views[skip:skip + size] if size else views[skip:]
    return {"tasks": [shapes.seed_task(v) for v in page], "count": len(views)}


@router.get("/tasks/{user}/{id}", summary="Get a task by id (seed era)", response_model=None)
async def seed_task_get(user: str, id: str, services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    return shapes.seed_task(await services.tasks.get_by_id(principal, _task_id(id)))


@router.delete("/tasks/{user}/{id}", status_code=202, summary="Delete a task by id (seed era)",
               response_class=Response)
async def seed_task_delete(user: str, id: str, services: ServicesDep, principal: PrincipalDep,
                           origin: OriginDep) -> Response:
    view = await services.tasks.get_by_id(principal, _task_id(id))
    await services.tasks.delete(principal, view, origin=origin)
    return Response(status_code=202)


# The current era's routes on one task, the same handlers as /api/v2's.
router.add_api_route("/tasks/{user}/{task}/input", coder.task_update_input, methods=["PATCH"], status_code=204,
                     response_class=Response, summary="Change a paused task's prompt")
router.add_api_route("/tasks/{user}/{task}/send", coder.task_send, methods=["POST"], status_code=204,
                     response_class=Response, summary="Send input to a task")
router.add_api_route("/tasks/{user}/{task}/logs", coder.task_logs, methods=["GET"], response_model=None,
                     summary="A task's conversation")
router.add_api_route("/tasks/{user}/{task}/pause", coder.task_pause, methods=["POST"], status_code=202,
                     response_model=None, summary="Pause a task")
router.add_api_route("/tasks/{user}/{task}/resume", coder.task_resume, methods=["POST"], status_code=202,
                     response_model=None, summary="Resume a paused task")
router.add_api_route("/tasks/{user}/{task}/events", coder.task_events, methods=["GET"],
                     response_class=EventSourceResponse, summary="A task's run events as Server-Sent Events")
