"""Queries about the audit log: append entries, read them newest first."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import AuditEntry


def new_entry(action: str, resource_type: str, *, resource_id: str | uuid.UUID | None = None,
              actor_id: uuid.UUID | None = None, actor_name: str = "", organization_id: uuid.UUID | None = None,
              status_code: int | None = None, ip: str | None = None, user_agent: str | None = None,
              request_id: str | None = None, details: Mapping[str, Any] | None = None) -> AuditEntry:
    """An audit entry's row, not yet stored (the journal writes some with the change they record)."""
    return AuditEntry(action=action, resource_type=resource_type,
                      resource_id=None if resource_id is None else str(resource_id), actor_id=actor_id,
                      actor_name=actor_name, organization_id=organization_id, status_code=status_code,
                      ip=ip, user_agent=user_agent, request_id=request_id, details=dict(details or {}))


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def record(self, action: str, resource_type: str, *, resource_id: str | uuid.UUID | None = None,
                     actor_id: uuid.UUID | None = None, actor_name: str = "",
                     organization_id: uuid.UUID | None = None, status_code: int | None = None,
                     ip: str | None = None, user_agent: str | None = None, request_id: str | None = None,
                     details: Mapping[str, Any] | None = None) -> AuditEntry:
        """Append an entry in the session's transaction."""
        entry = new_entry(action, resource_type, resource_id=resource_id, actor_id=actor_id, actor_name=actor_name,
                          organization_id=organization_id, status_code=status_code, ip=ip, user_agent=user_agent,
                          request_id=request_id, details=details)
        self._session.add(entry)
        await self._session.flush()
        return entry

    async def find(self, *, actor_id: uuid.UUID | None = None, organization_id: uuid.UUID | None = None,
                   resource_type: str | None = None, resource_id: str | uuid.UUID | None = None,
                   action: str | None = None, before: datetime.datetime | None = None,
                   limit: int = 100) -> list[AuditEntry]:
        """Entries newest first; pass the last one's ``created_at`` as ``before`` for the next page."""
        query = select(AuditEntry)
        if actor_id is not None:
            query = query.where(AuditEntry.actor_id == actor_id)
        if organization_id is not None:
            query = query.where(AuditEntry.organization_id == organization_id)
        if resource_type is not None:
            query = query.where(AuditEntry.resource_type == resource_type)
        if resource_id is not None:
            query = query.where(AuditEntry.resource_id == str(resource_id))
        if action is not None:
            query = query.where(AuditEntry.action == action)
        if before is not None:
            query = query.where(AuditEntry.created_at < before)
        query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
        return list(await self._session.scalars(query))

    async def prune(self, before: datetime.datetime) -> int:
        """Delete entries older than ``before`` (an audit retention policy); how many went."""
        result = await self._session.execute(delete(AuditEntry).where(AuditEntry.created_at < before))
        return int(getattr(result, "rowcount", 0) or 0)
