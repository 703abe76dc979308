"""Queries about organizations, the roles users hold in them, and memberships."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from taskcanvas.store.models import Membership, Organization, Role


class OrganizationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, name: str, *, display_name: str = "", description: str = "") -> Organization:
        org = Organization(name=name, display_name=display_name, description=description)
        self._session.add(org)
        await self._session.flush()
        return org

    async def get(self, organization_id: uuid.UUID) -> Organization | None:
        return await self._session.get(Organization, organization_id)

    async def by_name(self, name: str) -> Organization | None:
        return await self._session.scalar(select(Organization).where(Organization.name == name))

    # ------------------------------------------------------------------ roles
    async def ensure_role(self, name: str, *, permissions: Sequence[str] = (), description: str = "",
                          built_in: bool = False) -> Role:
        """The role called ``name``, created with these permissions if it does not exist yet."""
        role = await self.role(name)
        if role is None:
            role = Role(name=name, permissions=list(permissions), description=description, built_in=built_in)
            self._session.add(role)
            await self._session.flush()
        return role

    async def role(self, name: str) -> Role | None:
        return await self._session.scalar(select(Role).where(Role.name == name))

    async def roles(self) -> list[Role]:
        return list(await self._session.scalars(select(Role).order_by(Role.name)))

    # ------------------------------------------------------------------ memberships
    async def add_member(self, organization_id: uuid.UUID, user_id: uuid.UUID, role_id: uuid.UUID) -> Membership:
        membership = Membership(organization_id=organization_id, user_id=user_id, role_id=role_id)
        self._session.add(membership)
        await self._session.flush()
        return membership

    async def membership(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> Membership | None:
        """A user's membership of an organization, with its role loaded."""
        return await self._session.scalar(
            select(Membership)
            .where(Membership.organization_id == organization_id, Membership.user_id == user_id)
            .options(joinedload(Membership.role))
        )

    async def memberships_of(self, user_id: uuid.UUID) -> list[Membership]:
        """Every organization a user belongs to, with organization and role loaded."""
        return list(await self._session.scalars(_memberships_of(), {"user_id": user_id}))

    async def members(self, organization_id: uuid.UUID) -> list[Membership]:
        """An organization's memberships, with user and role loaded."""
        rows = await self._session.scalars(
            select(Membership)
            .where(Membership.organization_id == organization_id)
            .options(joinedload(Membership.user), joinedload(Membership.role))
            .order_by(Membership.created_at)
        )
        return list(rows)

    async def remove_member(self, organization_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        membership = await self.membership(organization_id, user_id)
        if membership is None:
            return False
        await self._session.delete(membership)
        await self._session.flush()
        return True


@functools.cache
def _memberships_of() -> Select[Membership]:
    """Built once: every authenticated request runs it, and building it cost about as much as running it."""
    return (select(Membership).where(Membership.user_id == bindparam("user_id"))
            .options(joinedload(Membership.organization), joinedload(Membership.role))
            .order_by(Membership.created_at))
