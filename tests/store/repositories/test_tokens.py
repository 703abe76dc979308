from __future__ import annotations

import datetime

import pytest

from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import TokenRepository, UserRepository

HOUR = datetime.timedelta(hours=1)


async def test_a_token_is_found_by_its_key_id_with_its_user(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        live = await TokenRepository(s).create(ada.id, "00aa00aa00aa00aa", "cli", "hash-live", hint="wxyz",
                                               scopes=["tasks"], expires_at=utcnow() + HOUR)
    async with database.session() as s:
        tokens = TokenRepository(s)
        found = await tokens.by_key_id("00aa00aa00aa00aa")
        assert found is not None and found.id == live.id and found.user.username == "ada"
        assert (found.kind, found.name, found.token_hash, found.hint) == ("api", "cli", "hash-live", "wxyz")
        assert found.scopes == ["tasks"] and found.expires_at is not None and found.revoked_at is None
        assert await tokens.by_key_id("ffffffffffffffff") is None
        named = await tokens.by_name(ada.id, "cli")
        assert named is not None and named.id == live.id


async def test_session_tokens_are_named_after_their_key_id(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        tokens = TokenRepository(s)
        first = await tokens.create(ada.id, "1111111111111111", "", "h1", kind="session")
        second = await tokens.create(ada.id, "2222222222222222", "ignored", "h2", kind="session")
    assert (first.name, second.name) == ("session-1111111111111111", "session-2222222222222222")


async def test_names_and_key_ids_are_unique(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        bob = await UserRepository(s).create("bob")
        await TokenRepository(s).create(ada.id, "1111111111111111", "cli", "h1")
        await TokenRepository(s).create(bob.id, "2222222222222222", "cli", "h2")  # another user's "cli"
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await TokenRepository(s).create(ada.id, "3333333333333333", "cli", "h3")
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await TokenRepository(s).create(ada.id, "1111111111111111", "other", "h4")


async def test_tokens_are_touched_moved_revoked_listed_and_deleted(database: Database) -> None:
    now = utcnow()
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        tokens = TokenRepository(s)
        first = await tokens.create(ada.id, "1111111111111111", "a", "h1")
        await tokens.create(ada.id, "2222222222222222", "b", "h2")
        await tokens.create(ada.id, "3333333333333333", "", "h3", kind="session", expires_at=now + HOUR)
    async with database.session() as s:
        tokens = TokenRepository(s)
        await tokens.touch(first.id, now)
        await tokens.set_expiry(first.id, now + 2 * HOUR)
        assert await tokens.revoke(first.id, now)
        assert not await tokens.revoke(first.id, now)
    async with database.session() as s:
        tokens = TokenRepository(s)
        token = await tokens.get(first.id)
        assert token is not None and token.last_used_at == now and token.revoked_at == now
        assert token.expires_at == now + 2 * HOUR
        assert [t.name for t in await tokens.list_for_user(ada.id)] == ["b", "session-3333333333333333"]
        assert [t.name for t in await tokens.list_for_user(ada.id, kind="api")] == ["b"]
        assert [t.name for t in await tokens.list_for_user(ada.id, include_revoked=True)] == [
            "a", "b", "session-3333333333333333"]
        assert await tokens.delete(first.id)
        assert not await tokens.delete(first.id)
    async with database.session() as s:
        assert await TokenRepository(s).by_key_id("1111111111111111") is None
