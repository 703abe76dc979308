from __future__ import annotations

import pytest

from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.repositories import UserRepository


async def test_users_are_found_by_id_username_and_email(database: Database) -> None:
    async with database.session() as s:
        users = UserRepository(s)
        ada = await users.create("ada", email="ada@example.com", name="Ada", password_hash="h", site_role="owner")
        await users.create("bob")
    async with database.session() as s:
        users = UserRepository(s)
        assert (await users.get(ada.id)) is not None
        found = await users.by_username("ada")
        assert found is not None and found.id == ada.id and found.site_role == "owner" and found.is_active
        assert (await users.by_email("ada@example.com")) is not None
        assert await users.by_username("carol") is None
        assert [u.username for u in await users.find()] == ["ada", "bob"]
        assert [u.username for u in await users.find(limit=1, offset=1)] == ["bob"]
        assert await users.count() == 2


@pytest.mark.parametrize("field", ["username", "email"])
async def test_usernames_and_emails_are_unique(database: Database, field: str) -> None:
    async with database.session() as s:
        await UserRepository(s).create("ada", email="ada@example.com")
    other = {"username": "ada", "email": "other@example.com"} if field == "username" else \
        {"username": "other", "email": "ada@example.com"}
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await UserRepository(s).create(other["username"], email=other["email"])
