"""Queries about API tokens: stored by the hash of their secret, looked up by it."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from taskcanvas.store.models import ApiToken


class TokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, user_id: uuid.UUID, name: str, token_hash: str, *, hint: str = "",
                     scopes: Sequence[str] = (), expires_at: datetime.datetime | None = None) -> ApiToken:
        token = ApiToken(user_id=user_id, name=name, token_hash=token_hash, hint=hint, scopes=list(scopes),
                         expires_at=expires_at)
        self._session.add(token)
        await self._session.flush()
        return token

    async def get(self, token_id: uuid.UUID) -> ApiToken | None:
        return await self._session.get(ApiToken, token_id)

    async def active_by_hash(self, token_hash: str, now: datetime.datetime) -> ApiToken | None:
        """The token with this hash if it is neither revoked nor expired at ``now``, with its user."""
        return await self._session.scalar(
            select(ApiToken)
            .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None),
                   or_(ApiToken.expires_at.is_(None), ApiToken.expires_at > now))
            .options(selectinload(ApiToken.user))
        )

    async def list_for_user(self, user_id: uuid.UUID, *, include_revoked: bool = False) -> list[ApiToken]:
        query = select(ApiToken).where(ApiToken.user_id == user_id)
        if not include_revoked:
            query = query.where(ApiToken.revoked_at.is_(None))
        return list(await self._session.scalars(query.order_by(ApiToken.created_at)))

    async def touch(self, token_id: uuid.UUID, now: datetime.datetime) -> None:
        """Record a use (one UPDATE, no read: this runs on every authenticated request)."""
        await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )

    async def revoke(self, token_id: uuid.UUID, now: datetime.datetime) -> bool:
        """Revoke a token; whether it was active."""
        result = await self._session.execute(
            update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None)).values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(getattr(result, "rowcount", 0))
