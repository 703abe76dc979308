"""Queries about run-time settings: read a key, write a key."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from taskcanvas.store.models import SiteSetting
from taskcanvas.store.models.types import utcnow


def default_models_key(user_id: uuid.UUID) -> str:
    """Where a user's default models live (ragflow's ``PATCH /models/default``): ``{model_type: llm_id}``."""
    return f"ragflow.default_models.{user_id.hex}"


class SettingRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, key: str, default: Any = None) -> Any:
        row = await self._session.get(SiteSetting, key)
        return default if row is None else row.value

    async def put(self, key: str, value: Any) -> None:
        row = await self._session.get(SiteSetting, key)
        if row is None:
            self._session.add(SiteSetting(key=key, value=value, updated_at=utcnow()))
        else:
            row.value = value
            row.updated_at = utcnow()
        await self._session.flush()
