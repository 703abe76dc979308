"""The declarative base every model hangs from, and the columns most tables share.

Constraint and index names follow one convention, so Alembic produces the same names on
SQLite and PostgreSQL and later migrations can refer to them.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import MetaData, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from taskcanvas.store.models.types import JSONType, UTCDateTime, new_id, utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        uuid.UUID: Uuid(),
        datetime.datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


class IdMixin:
    """A UUIDv7 primary key, assigned in Python so it is known before the insert."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-1)


class CreatedMixin:
    created_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, sort_order=1)


class TimestampsMixin(CreatedMixin):
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow, sort_order=2)
