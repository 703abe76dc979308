"""The audit trail: every change and every login, with who, what, when, from where, and the result.

Faces pass a :class:`Origin` (address, user agent, request id) with each call; the service
methods that change something record an entry in the same transaction as the change, so an
entry exists exactly when the change does. Refused attempts are recorded too (their own
transaction), with the status the caller got.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.service.accounts import user_of
from taskcanvas.service.auth import Principal
from taskcanvas.service.rbac import Action, Resource, ResourceKind, require
from taskcanvas.store import Database
from taskcanvas.store.models import AuditEntry
from taskcanvas.store.repositories import AuditRepository
from taskcanvas.store.repositories.audit import new_entry


@dataclass(frozen=True)
class Origin:
    """Where a request came from."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


async def record(s: AsyncSession, actor: Principal | None, action: str, kind: str, resource_id: Any = None, *,
                 origin: Origin | None = None, organization_id: uuid.UUID | None = None, status_code: int = 200,
                 details: Mapping[str, Any] | None = None, actor_name: str | None = None) -> None:
    """One audit entry, in the caller's transaction."""
    if actor_name is None and actor is not None:
        user = await user_of(s, actor)
        actor_name = user.username if user is not None else ""
    s.add(entry(actor, action, kind, resource_id, actor_name=actor_name or "", origin=origin,
                organization_id=organization_id, status_code=status_code, details=details))
    await s.flush()


def entry(actor: Principal | None, action: str, kind: str, resource_id: Any = None, *, actor_name: str,
          origin: Origin | None = None, organization_id: uuid.UUID | None = None, status_code: int = 200,
          details: Mapping[str, Any] | None = None) -> AuditEntry:
    """One audit entry's row, for a change written through the journal (the entry in the same commit)."""
    origin = origin or Origin()
    return new_entry(action, kind, resource_id=resource_id, actor_id=actor.user_id if actor is not None else None,
                     actor_name=actor_name, organization_id=organization_id, status_code=status_code,
                     ip=origin.ip, user_agent=origin.user_agent, request_id=origin.request_id, details=details)


async def record_alone(database: Database, actor: Principal | None, action: str, kind: str, resource_id: Any = None,
                       **kwargs: Any) -> None:
    """An entry in a transaction of its own: for refusals, whose own transaction was rolled back."""
    async with database.session() as s:
        await record(s, actor, action, kind, resource_id, **kwargs)


async def entries(database: Database, principal: Principal, *, limit: int = 100, offset: int = 0,
                  action: str | None = None, resource_type: str | None = None) -> list[AuditEntry]:
    """The newest entries first; owners and auditors only (403 for anyone else, as coder answers)."""
    require(principal, Action.READ_AUDIT, Resource(ResourceKind.AUDIT))
    async with database.session() as s:
        rows = await AuditRepository(s).find(action=action, resource_type=resource_type, limit=limit + offset)
    return rows[offset:]


async def count(database: Database, principal: Principal, *, action: str | None = None,
                resource_type: str | None = None) -> int:
    """How many entries match, for the same callers as :func:`entries`."""
    require(principal, Action.READ_AUDIT, Resource(ResourceKind.AUDIT))
    statement = select(func.count()).select_from(AuditEntry)
    if action:
        statement = statement.where(AuditEntry.action == action)
    if resource_type:
        statement = statement.where(AuditEntry.resource_type == resource_type)
    async with database.session() as s:
        return int(await s.scalar(statement) or 0)
