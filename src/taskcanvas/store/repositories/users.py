"""Queries about users."""

from __future__ import annotations

import uuid

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import User


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, username: str, *, email: str | None = None, name: str = "",
                     password_hash: str | None = None, site_role: str | None = None) -> User:
        user = User(username=username, email=email, name=name, password_hash=password_hash,
                    site_role=site_role)
        self._session.add(user)
        await self._session.flush()
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self._session.get(User, user_id)

    async def by_username(self, username: str) -> User | None:
        return await self._session.scalar(select(User).where(User.username == username))

    async def by_email(self, email: str) -> User | None:
        return await self._session.scalar(select(User).where(User.email == email))

    async def by_login(self, login: str) -> User | None:
        """The user a person means by ``login``: their username or email, in any letter case.

        People type ``Ada`` or ``ADA@example.com`` for ``ada``; the unique constraints are
        case-sensitive, so the oldest match wins if two accounts differ only in case.
        """
        wanted = login.strip().lower()
        if not wanted:
            return None
        return await self._session.scalar(
            select(User)
            .where(or_(func.lower(User.username) == wanted, func.lower(User.email) == wanted))
            .order_by(User.created_at, User.id)
            .limit(1)
        )

    async def find(self, *, limit: int | None = 100, offset: int = 0) -> list[User]:
        """Users by username; ``limit=None`` for all of them."""
        rows = await self._session.scalars(select(User).order_by(User.username).limit(limit).offset(offset))
        return list(rows)

    async def count(self) -> int:
        """How many users exist (the first one to sign up becomes the site admin)."""
        return int(await self._session.scalar(select(func.count()).select_from(User)) or 0)

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str | None) -> None:
        """Replace a stored hash (a login with outdated argon2 parameters, a password change)."""
        await self._session.execute(
            update(User).where(User.id == user_id).values(password_hash=password_hash)
            .execution_options(synchronize_session="fetch")
        )

    async def set_active(self, user_id: uuid.UUID, active: bool) -> None:
        """Suspend or reactivate an account: a suspended user keeps their rows but cannot sign in."""
        await self._session.execute(
            update(User).where(User.id == user_id).values(is_active=active)
            .execution_options(synchronize_session="fetch")
        )
