"""coder's JSON shapes for what taskcanvas holds: tasks, "workspace builds", templates, users, audit.

coder's words map onto ours (docs/compat.md, "coder faces"):

- a template is an agent, a template version an agent version (``v<number>``);
- a task's workspace is its session (``workspace_id`` = session id, ``workspace_name`` = task
  name); a workspace build is a run (``workspace_build_number`` = run number,
  ``workspace_build_id`` = run id); there is no workspace agent or app, so those fields are null;
- a workspace build status is derived from the task's latest run (:func:`workspace_status`).

Every id is a dashed UUID string, every time RFC 3339 in UTC. Only rendering lives here: what
a field holds is decided by the service (:class:`~taskcanvas.service.tasks.TaskView`).
"""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from taskcanvas.execution import PAUSED, QUEUED, RUNNING
from taskcanvas.service.auth import Principal
from taskcanvas.service.rbac import OrgRole, SiteRole
from taskcanvas.service.tasks import LogEntry, Logs, StateEntry, TaskView
from taskcanvas.store.models import Agent, AgentVersion, ApiToken, AuditEntry, Organization, Preset, User

# ---------------------------------------------------------------------------- scalars


def ts(value: datetime.datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, as Go's ``time.Time`` marshals (``None`` stays null)."""
    if value is None:
        return None
    if value.tzinfo is None:  # pragma: no cover - the store's columns are timezone-aware
        value = value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def uid(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


NIL_UUID = str(uuid.UUID(int=0))


def template_name(title: str) -> str:
    """An agent's title as a coder template name: lower case, letters and digits joined by single hyphens."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:32].strip("-") or "agent"


# ---------------------------------------------------------------------------- runs as builds

_JOB_STATUS = {"pending": "pending", "starting": "running", "stopping": "running", "stopped": "succeeded",
               "failed": "failed", "canceling": "canceling", "canceled": "canceled", "deleting": "running",
               "deleted": "succeeded"}


def workspace_status(view: TaskView) -> str:
    """The task's latest run as a coder workspace build status (the table in docs/compat.md).

    ======================================  ===========
    latest run                              status
    ======================================  ===========
    none, or queued and never started       pending
    queued again after a pause (resuming)   starting
    running                                 running
    running while the task pauses           stopping
    waiting / finished / failed in a step   running
    failed before any component ran         failed
    cancelled                               canceled
    paused (the run or the task)            stopped
    ======================================  ===========
    """
    run = view.latest_run
    paused = view.task.status == PAUSED
    if run is None:
        return "stopped" if paused else "pending"
    if run.status == PAUSED:
        return "stopped"
    if run.status == RUNNING:
        return "stopping" if paused else "running"
    if paused:
        return "stopped"
    if run.status == QUEUED:
        return "pending" if run.started_at is None else "starting"
    if run.status == "failed" and view.status == "error":
        return "failed"
    if run.status == "cancelled":
        return "canceled"
    return "running"


def job_status(view: TaskView) -> str:
    """The provisioner-job status of the latest "build"."""
    status = workspace_status(view)
    if status == "running":
        run = view.latest_run
        return "running" if run is not None and run.status in (QUEUED, RUNNING) else "succeeded"
    return _JOB_STATUS.get(status, "pending")


def updated_at(view: TaskView) -> datetime.datetime:
    """When anything about the task last changed: the task row, its session, its latest run or state."""
    moments = [view.task.updated_at]
    if view.session is not None:
        moments.append(view.session.updated_at)
    run = view.latest_run
    if run is not None:
        moments += [m for m in (run.created_at, run.started_at, run.finished_at) if m is not None]
    if view.current_state is not None:
        moments.append(view.current_state.timestamp)
    return max(moments)


def current_state(state: StateEntry | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"timestamp": ts(state.timestamp), "state": state.state, "message": state.message, "uri": state.uri}


def workspace_build(view: TaskView, *, transition: str, reason: str) -> dict[str, Any]:
    """coder's ``WorkspaceBuild`` for the task's latest run (a pause is a ``stop``, a resume a ``start``)."""
    run = view.latest_run
    run_id = uid(run.id) if run is not None else NIL_UUID
    created = run.created_at if run is not None else view.task.created_at
    status = job_status(view)
    finished = run.finished_at if run is not None else None
    job = {
        "id": run_id, "created_at": ts(created), "started_at": ts(run.started_at) if run is not None else None,
        "completed_at": ts(finished) if status in ("succeeded", "failed", "canceled") else None,
        "canceled_at": ts(finished) if status == "canceled" else None,
        "error": (run.error or "") if run is not None and status == "failed" else "",
        "file_id": NIL_UUID, "tags": {}, "queue_position": 0, "queue_size": 0,
        "organization_id": uid(view.task.organization_id), "initiator_id": uid(view.task.owner_id),
        "input": {"workspace_build_id": run_id, "template_version_id": uid(view.version.id)},
        "metadata": {"template_id": uid(view.agent.id), "template_name": template_name(view.agent.title),
                     "template_display_name": view.agent.title, "template_icon": view.agent.avatar or "",
                     "template_version_name": version_name(view.version), "workspace_id": workspace_id(view),
                     "workspace_name": view.task.name, "workspace_build_transition": transition},
        "status": status, "type": "workspace_build", "worker_id": None, "logs_overflowed": False,
    }
    return {
        "id": run_id, "created_at": ts(created), "updated_at": ts(updated_at(view)),
        "workspace_id": workspace_id(view), "workspace_name": view.task.name,
        "workspace_owner_id": uid(view.owner.id), "workspace_owner_name": view.owner.username,
        "workspace_owner_avatar_url": "", "template_version_id": uid(view.version.id),
        "template_version_name": version_name(view.version), "template_version_preset_id": uid(view.task.preset_id),
        "build_number": run.number if run is not None else 0, "transition": transition,
        "initiator_id": uid(view.owner.id), "initiator_name": view.owner.username, "job": job, "reason": reason,
        "resources": [], "deadline": None, "max_deadline": None, "status": workspace_status(view), "daily_cost": 0,
        "matched_provisioners": {"count": 1, "available": 1, "most_recently_seen": None},
        "has_ai_task": True, "has_external_agent": False,
    }


def workspace_id(view: TaskView) -> str | None:
    return uid(view.session.id) if view.session is not None else None


def version_name(version: AgentVersion) -> str:
    return f"v{version.number}"


# ---------------------------------------------------------------------------- tasks


def task(view: TaskView) -> dict[str, Any]:
    """coder's ``Task`` (the current era, ``/api/v2``), plus ``workspace_build_id`` (the latest run's id)."""
    run = view.latest_run
    return {
        "id": uid(view.task.id),
        "organization_id": uid(view.task.organization_id),
        "owner_id": uid(view.owner.id),
        "owner_name": view.owner.username,
        "owner_avatar_url": "",
        "name": view.task.name,
        "display_name": view.task.display_name,
        "template_id": uid(view.agent.id),
        "template_version_id": uid(view.version.id),
        "template_name": template_name(view.agent.title),
        "template_display_name": view.agent.title,
        "template_icon": view.agent.avatar or "",
        "workspace_id": workspace_id(view),
        "workspace_name": view.task.name,
        "workspace_status": workspace_status(view),
        "workspace_build_number": run.number if run is not None else 0,
        "workspace_build_id": uid(run.id) if run is not None else None,
        "workspace_agent_id": None,
        "workspace_agent_lifecycle": None,
        "workspace_agent_health": None,
        "workspace_app_id": None,
        "initial_prompt": view.task.prompt,
        "status": view.status,
        "current_state": current_state(view.current_state),
        "created_at": ts(view.task.created_at),
        "updated_at": ts(updated_at(view)),
    }


def seed_task(view: TaskView) -> dict[str, Any]:
    """The seed era's ``Task`` (``taskFromWorkspace``): ``status`` is a workspace status."""
    return {
        "id": uid(view.task.id),
        "organization_id": uid(view.task.organization_id),
        "owner_id": uid(view.owner.id),
        "owner_name": view.owner.username,
        "name": view.task.name,
        "template_id": uid(view.agent.id),
        "template_name": template_name(view.agent.title),
        "template_display_name": view.agent.title,
        "template_icon": view.agent.avatar or "",
        "workspace_id": workspace_id(view),
        "workspace_agent_id": None,
        "workspace_agent_lifecycle": None,
        "workspace_agent_health": None,
        "created_at": ts(view.task.created_at),
        "updated_at": ts(updated_at(view)),
        "initial_prompt": view.task.prompt,
        "status": workspace_status(view),
        "current_state": current_state(view.current_state),
    }


def log_entry(entry: LogEntry) -> dict[str, Any]:
    return {"id": entry.id, "content": entry.content, "type": entry.type, "time": ts(entry.time)}


def logs(result: Logs) -> dict[str, Any]:
    body: dict[str, Any] = {"logs": [log_entry(e) for e in result.entries]}
    if result.snapshot:
        body["snapshot"] = True
    if result.snapshot_at is not None:
        body["snapshot_at"] = ts(result.snapshot_at)
    return body


# ---------------------------------------------------------------------------- templates


AgentVersionPair = tuple[Agent, AgentVersion | None]
"""An agent and its newest version (None for an agent without one)."""


def template(agent: AgentVersionPair, *, creator: User | None, organization: Organization | None) -> dict[str, Any]:
    """coder's ``Template`` for an agent; ``active_version_id`` is its newest version."""
    row, latest = agent
    return {
        "id": uid(row.id), "created_at": ts(row.created_at), "updated_at": ts(row.updated_at),
        "organization_id": uid(row.organization_id),
        "organization_name": organization.name if organization is not None else "",
        "organization_display_name": organization.display_name if organization is not None else "",
        "organization_icon": "",
        "name": template_name(row.title), "display_name": row.title, "provisioner": "terraform",
        "active_version_id": uid(latest.id) if latest is not None else NIL_UUID,
        "active_user_count": 0, "build_time_stats": {}, "description": row.description or "",
        "deprecated": False, "deprecation_message": "", "icon": row.avatar or "",
        "default_ttl_ms": 0, "activity_bump_ms": 0,
        "autostop_requirement": {"days_of_week": [], "weeks": 0},
        "autostart_requirement": {"days_of_week": ["monday", "tuesday", "wednesday", "thursday", "friday",
                                                   "saturday", "sunday"]},
        "created_by_id": uid(row.owner_id), "created_by_name": creator.username if creator is not None else "",
        "allow_user_autostart": False, "allow_user_autostop": False, "allow_user_cancel_workspace_jobs": True,
        "failure_ttl_ms": 0, "time_til_dormant_ms": 0, "time_til_dormant_autodelete_ms": 0,
        "require_active_version": False, "max_port_share_level": "owner", "use_classic_parameter_flow": False,
        "cors_behavior": "simple", "deleted": False,
    }


def template_version(agent: Agent, version: AgentVersion, *, creator: User | None) -> dict[str, Any]:
    """coder's ``TemplateVersion`` for an agent version: imported (job succeeded) and able to run tasks."""
    return {
        "id": uid(version.id), "template_id": uid(agent.id), "organization_id": uid(agent.organization_id),
        "created_at": ts(version.created_at), "updated_at": ts(version.created_at),
        "name": version_name(version), "message": version.title or agent.title,
        "job": {"id": uid(version.id), "created_at": ts(version.created_at), "started_at": ts(version.created_at),
                "completed_at": ts(version.created_at), "canceled_at": None, "error": "", "file_id": NIL_UUID,
                "tags": {}, "queue_position": 0, "queue_size": 0, "status": "succeeded",
                "type": "template_version_import", "organization_id": uid(agent.organization_id),
                "input": {"template_version_id": uid(version.id)}},
        "matched_provisioners": {"count": 1, "available": 1, "most_recently_seen": None},
        "readme": version.description or agent.description or "",
        "created_by": minimal_user(creator, version.created_by),
        "archived": False, "warnings": [], "has_ai_task": True, "has_external_agent": False,
    }


def preset(row: Preset) -> dict[str, Any]:
    """coder's ``Preset`` (its Go struct has no JSON tags: the keys are the field names)."""
    inputs = row.inputs if isinstance(row.inputs, Mapping) else {}
    parameters = []
    for name, value in inputs.items():
        if isinstance(value, Mapping) and "value" in value:
            value = value["value"]
        parameters.append({"Name": str(name), "Value": value if isinstance(value, str) else _json_text(value)})
    return {"ID": uid(row.id), "Name": row.name, "Parameters": parameters, "Default": bool(row.is_default),
            "DesiredPrebuildInstances": None, "Description": "", "Icon": ""}


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# ---------------------------------------------------------------------------- users


_SITE_ROLE_NAMES = {SiteRole.OWNER: "Owner", SiteRole.AUDITOR: "Auditor"}
_ORG_ROLE_NAMES = {OrgRole.ADMIN: ("organization-admin", "Organization Admin"),
                   OrgRole.MEMBER: ("organization-member", "Organization Member"),
                   OrgRole.AUDITOR: ("organization-auditor", "Organization Auditor")}


def minimal_user(user: User | None, fallback_id: uuid.UUID | None = None) -> dict[str, Any]:
    if user is None:
        return {"id": uid(fallback_id) or NIL_UUID, "username": "", "avatar_url": "", "name": ""}
    return {"id": uid(user.id), "username": user.username, "avatar_url": "", "name": user.name or ""}


def user(row: User, grants: Principal) -> dict[str, Any]:
    """coder's ``User``: the site role and each organization role (with its organization) in ``roles``."""
    roles: list[dict[str, Any]] = []
    if grants.site_role is not None:
        roles.append({"name": grants.site_role.value, "display_name": _SITE_ROLE_NAMES[grants.site_role]})
    for org_id, role in sorted(grants.org_roles.items(), key=lambda item: str(item[0])):
        name, shown = _ORG_ROLE_NAMES[role]
        roles.append({"name": name, "display_name": shown, "organization_id": uid(org_id)})
    return {
        "id": uid(row.id), "username": row.username, "avatar_url": "", "name": row.name or "",
        "email": row.email or "", "created_at": ts(row.created_at), "updated_at": ts(row.updated_at),
        "last_seen_at": ts(row.updated_at), "status": "active" if row.is_active else "suspended",
        "login_type": "password" if row.password_hash else "none", "theme_preference": "",
        "organization_ids": sorted(uid(o) or "" for o in grants.org_roles), "roles": roles,
    }


def api_key(row: ApiToken, *, username: str) -> dict[str, Any]:
    """coder's ``APIKey`` for one of a user's named tokens (``id`` is the token's public key id)."""
    lifetime = round((row.expires_at - row.created_at).total_seconds()) if row.expires_at is not None else 0
    return {
        "id": row.key_id, "user_id": uid(row.user_id), "username": username, "token_name": row.name,
        "last_used": ts(row.last_used_at) or ts(datetime.datetime.fromtimestamp(0, datetime.UTC)),
        "expires_at": ts(row.expires_at), "created_at": ts(row.created_at), "updated_at": ts(row.created_at),
        "login_type": "token", "scope": "all", "scopes": ["coder:all"], "lifetime_seconds": lifetime,
        "allow_list": [],
    }


# ---------------------------------------------------------------------------- audit

_FRIENDLY = {"create": "created", "write": "updated", "delete": "deleted", "start": "started", "stop": "stopped",
             "login": "logged in", "logout": "logged out", "send": "sent input to", "pause": "paused",
             "resume": "resumed"}


def audit_log(entry: AuditEntry, *, actor: dict[str, Any] | None,
              organizations: Mapping[uuid.UUID, Organization]) -> dict[str, Any]:
    """coder's ``AuditLog`` for one entry; ``additional_fields`` holds what the entry recorded."""
    details = dict(entry.details or {})
    target = str(details.get("name") or details.get("title") or details.get("username") or "")
    diff: dict[str, Any] = {}
    old, new = details.get("old"), details.get("new")
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted(set(old) | set(new)):
            diff[str(key)] = {"old": old.get(key), "new": new.get(key), "secret": False}
    action = _FRIENDLY.get(entry.action, entry.action)
    if entry.action in ("login", "logout"):
        description = f"{{user}} {action}"
    else:
        description = f"{{user}} {action} {entry.resource_type.replace('_', ' ')}" + (" {target}" if target else "")
    org = organizations.get(entry.organization_id) if entry.organization_id is not None else None
    body: dict[str, Any] = {
        "id": uid(entry.id), "request_id": entry.request_id or NIL_UUID, "time": ts(entry.created_at),
        "ip": entry.ip or "", "user_agent": entry.user_agent or "", "resource_type": entry.resource_type,
        "resource_id": entry.resource_id or NIL_UUID, "resource_target": target, "resource_icon": "",
        "action": entry.action, "diff": diff, "status_code": entry.status_code or 0,
        "additional_fields": details, "description": description, "resource_link": "", "is_deleted": False,
        "organization_id": uid(entry.organization_id) or NIL_UUID, "user": actor,
    }
    if org is not None:
        body["organization"] = {"id": uid(org.id), "name": org.name, "display_name": org.display_name, "icon": ""}
    return body


def ids(values: Iterable[uuid.UUID | None]) -> set[uuid.UUID]:
    return {v for v in values if v is not None}
