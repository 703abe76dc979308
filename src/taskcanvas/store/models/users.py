"""People and the organizations they belong to: users, organizations, roles, memberships.

A role is a named set of permissions; a membership gives a user one role in one
organization. ``User.site_role`` is a role over the whole site (owner, auditor), above every organization.
What a permission allows is decided in ``service/rbac.py``, not here.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from taskcanvas.store.models.base import Base, CreatedMixin, IdMixin, TimestampsMixin


class User(IdMixin, TimestampsMixin, Base):
    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    site_role: Mapped[str | None] = mapped_column(String(16))
    """``owner`` (the site admin) or ``auditor``; None for everyone else (their roles are per organization)."""
    is_active: Mapped[bool] = mapped_column(default=True)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", lazy="raise")


class Organization(IdMixin, TimestampsMixin, Base):
    __tablename__ = "organizations"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")

    memberships: Mapped[list[Membership]] = relationship(back_populates="organization", lazy="raise")


class Role(IdMixin, CreatedMixin, Base):
    __tablename__ = "roles"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    permissions: Mapped[list[Any]] = mapped_column(default=list)
    built_in: Mapped[bool] = mapped_column(default=False)


class Membership(IdMixin, CreatedMixin, Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organization_id", "user_id"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"), index=True)

    user: Mapped[User] = relationship(back_populates="memberships", lazy="raise")
    organization: Mapped[Organization] = relationship(back_populates="memberships", lazy="raise")
    role: Mapped[Role] = relationship(lazy="raise")
