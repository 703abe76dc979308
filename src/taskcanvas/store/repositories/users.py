"""Queries about users."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, username: str, *, email: str | None = None, name: str = "",
                     password_hash: str | None = None, is_admin: bool = False) -> User:
        user = User(username=username, email=email, name=name, password_hash=password_hash, is_admin=is_admin)
        self._session.add(user)
        await self._session.flush()
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self._session.get(User, user_id)

    async def by_username(self, username: str) -> User | None:
        return await self._session.scalar(select(User).where(User.username == username))

    async def by_email(self, email: str) -> User | None:
        return await self._session.scalar(select(User).where(User.email == email))

    async def find(self, *, limit: int = 100, offset: int = 0) -> list[User]:
        rows = await self._session.scalars(select(User).order_by(User.username).limit(limit).offset(offset))
        return list(rows)

    async def count(self) -> int:
        """How many users exist (the first one to sign up becomes the site admin)."""
        return int(await self._session.scalar(select(func.count()).select_from(User)) or 0)
