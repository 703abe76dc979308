"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no timezone-aware timestamp and no JSONB; these types hide that so the models
(and every query) are written once. Ids are UUIDv7: time-ordered, so new rows land at the end
of primary-key indexes and ordering by id follows creation.
"""

from __future__ import annotations

import datetime
import os
import threading
import time
import uuid
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

JSONType: TypeEngine[Any] = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""JSON on SQLite, JSONB (indexable, compact) on PostgreSQL; Python ``None`` is SQL ``NULL``."""


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


_last = (0, 0)
_lock = threading.Lock()


def new_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, a 12-bit counter, then random bits.

    The counter (RFC 9562 §6.2, method 1) keeps ids made by one process strictly increasing
    within a millisecond too, so ``ORDER BY created_at, id`` breaks ties in creation order.
    """
    global _last
    with _lock:
        millis, counter = time.time_ns() // 1_000_000, 0
        if millis <= _last[0]:
            millis, counter = _last[0], _last[1] + 1
            if counter > 0xFFF:  # 4096 ids in one millisecond: borrow the next one
                millis, counter = millis + 1, 0
        _last = (millis, counter)
    value = (millis << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | (int.from_bytes(os.urandom(8)) >> 2)
    return uuid.UUID(int=value)


class UTCDateTime(TypeDecorator[datetime.datetime]):
    """A timezone-aware timestamp, stored in UTC everywhere.

    PostgreSQL keeps ``timestamptz``; SQLite would silently drop the offset, so values are
    converted to UTC and stored naive, and read back as UTC. Naive datetimes are refused:
    guessing their zone is how timestamps drift.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime.datetime | None, dialect: Dialect) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given for a timezone-aware column")
        value = value.astimezone(datetime.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime.datetime | None, dialect: Dialect) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)
