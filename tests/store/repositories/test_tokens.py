from __future__ import annotations

import datetime

from taskcanvas.store import Database
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import TokenRepository, UserRepository

HOUR = datetime.timedelta(hours=1)


async def test_an_active_token_is_found_by_its_hash_with_its_user(database: Database) -> None:
    now = utcnow()
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        tokens = TokenRepository(s)
        live = await tokens.create(ada.id, "cli", "hash-live", hint="tc_ab", scopes=["tasks"])
        await tokens.create(ada.id, "old", "hash-expired", expires_at=now - HOUR)
        await tokens.create(ada.id, "soon", "hash-soon", expires_at=now + HOUR)
    async with database.session() as s:
        tokens = TokenRepository(s)
        found = await tokens.active_by_hash("hash-live", now)
        assert found is not None and found.id == live.id and found.user.username == "ada"
        assert found.scopes == ["tasks"] and found.hint == "tc_ab"
        assert await tokens.active_by_hash("hash-expired", now) is None
        assert await tokens.active_by_hash("hash-soon", now) is not None
        assert await tokens.active_by_hash("hash-soon", now + 2 * HOUR) is None
        assert await tokens.active_by_hash("nope", now) is None


async def test_tokens_are_touched_revoked_and_listed(database: Database) -> None:
    now = utcnow()
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        tokens = TokenRepository(s)
        first = await tokens.create(ada.id, "a", "h1")
        await tokens.create(ada.id, "b", "h2")
    async with database.session() as s:
        tokens = TokenRepository(s)
        await tokens.touch(first.id, now)
        assert await tokens.revoke(first.id, now)
        assert not await tokens.revoke(first.id, now)
    async with database.session() as s:
        tokens = TokenRepository(s)
        token = await tokens.get(first.id)
        assert token is not None and token.last_used_at == now and token.revoked_at == now
        assert await tokens.active_by_hash("h1", now) is None
        assert [t.name for t in await tokens.list_for_user(ada.id)] == ["b"]
        assert [t.name for t in await tokens.list_for_user(ada.id, include_revoked=True)] == ["a", "b"]
