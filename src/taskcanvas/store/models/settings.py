"""Settings changed at run time through an API (ragflow's default models), one JSON value per key.

What an operator configures lives in the settings file; this table holds only what users
change while the server runs, so a restart keeps it.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from taskcanvas.store.models.base import Base
from taskcanvas.store.models.types import JSONType, utcnow


class SiteSetting(Base):
    __tablename__ = "site_settings"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType, nullable=True)
    updated_at: Mapped[datetime.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
