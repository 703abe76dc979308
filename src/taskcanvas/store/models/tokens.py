"""API tokens: long-lived credentials a user hands to scripts and clients.

Only a hash of the secret is stored (looked up directly, so no secret ever sits in the
database); ``hint`` is the few characters shown in listings to tell tokens apart.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from taskcanvas.store.models.base import Base, CreatedMixin, IdMixin
from taskcanvas.store.models.users import User


class ApiToken(IdMixin, CreatedMixin, Base):
    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16), default="api")
    """``api`` (named, listed, revoked by its user) or ``session`` (made by a login)."""
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    """The token's public id, the part of ``tc_<id>_<secret>`` that finds this row."""
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    hint: Mapped[str] = mapped_column(String(16), default="")
    scopes: Mapped[list[Any]] = mapped_column(default=list)
    expires_at: Mapped[datetime.datetime | None]
    last_used_at: Mapped[datetime.datetime | None]
    revoked_at: Mapped[datetime.datetime | None]

    user: Mapped[User] = relationship(lazy="raise")
