"""Queries about tokens, login sessions and API tokens alike.

A token row is found by its ``key_id`` (the public ``<id>`` part of ``tc_<id>_<secret>``),
never by the secret: the service compares the secret's hash itself, in constant time.
"""

from __future__ import annotations

import datetime
import functools
import uuid
from collections.abc import Sequence

from sqlalchemy import Select, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from taskcanvas.store.models import ApiToken

SESSION_KIND = "session"


def session_token_name(key_id: str) -> str:
    """Names are unique per user and sessions have none of their own: this one cannot collide."""
    return f"session-{key_id}"


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, user_id: uuid.UUID, key_id: str, name: str, token_hash: str, *, kind: str = "api",
                     hint: str = "", scopes: Sequence[str] = (),
                     expires_at: datetime.datetime | None = None) -> ApiToken:
        """Store a token; a session token is always named ``session-<key_id>``, whatever ``name`` says."""
        if kind == SESSION_KIND:
            name = session_token_name(key_id)
        token = ApiToken(user_id=user_id, key_id=key_id, name=name, kind=kind, token_hash=token_hash, hint=hint,
                         scopes=list(scopes), expires_at=expires_at)
        self._session.add(token)
        await self._session.flush()
        return token

    async def get(self, token_id: uuid.UUID) -> ApiToken | None:
        return await self._session.get(ApiToken, token_id)

    async def by_key_id(self, key_id: str) -> ApiToken | None:
        """The token a request presents, with its user (every authenticated request needs both)."""
        return await self._session.scalar(_by_key_id(), {"key_id": key_id})

    async def by_name(self, user_id: uuid.UUID, name: str) -> ApiToken | None:
        """A user's token by name, revoked or not (a revoked one still holds its name)."""
        return await self._session.scalar(
            select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.name == name))

    async def list_for_user(self, user_id: uuid.UUID, *, kind: str | None = None,
                            include_revoked: bool = False) -> list[ApiToken]:
        """A user's tokens, oldest first; expired ones are listed too, so their owner can see and drop them."""
        query = select(ApiToken).where(ApiToken.user_id == user_id)
        if kind is not None:
            query = query.where(ApiToken.kind == kind)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return list(await self._session.scalars(query.order_by(ApiToken.created_at, ApiToken.id)))

    async def touch(self, token_id: uuid.UUID, now: datetime.datetime) -> None:
        """Record a use (one UPDATE, no read: it runs on authenticated requests)."""
        await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )

    async def set_expiry(self, token_id: uuid.UUID, expires_at: datetime.datetime | None) -> None:
        """Move a token's expiry (a login session slides forward while it is used)."""
        await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(expires_at=expires_at)
            .execution_options(synchronize_session=False)
        )

    async def revoke(self, token_id: uuid.UUID, now: datetime.datetime) -> bool:
        """Revoke a token; whether it was active. The row stays, so its holder is told it was revoked."""
        result = await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))

    async def delete(self, token_id: uuid.UUID) -> bool:
        """Remove a token row for good (a revoked token whose name is wanted again)."""
        result = await self._session.execute(
            delete(ApiToken).where(ApiToken.id == token_id).execution_options(synchronize_session=False))
        return bool(getattr(result, "rowcount", 0))


@functools.cache
def _by_key_id() -> Select[ApiToken]:
    """Built once: every authenticated request runs it, and building it cost about as much as running it."""
    return select(ApiToken).where(ApiToken.key_id == bindparam("key_id")).options(joinedload(ApiToken.user))
