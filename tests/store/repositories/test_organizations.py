from __future__ import annotations

import pytest
from sqlalchemy.exc import InvalidRequestError

from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.repositories import OrganizationRepository, UserRepository


async def test_members_hold_a_role_in_an_organization(database: Database) -> None:
    async with database.session() as s:
        orgs = OrganizationRepository(s)
        ada = await UserRepository(s).create("ada")
        acme = await orgs.create("acme", display_name="ACME")
        admin = await orgs.ensure_role("admin", permissions=["task:*", "agent:*"], built_in=True)
        assert (await orgs.ensure_role("admin", permissions=["ignored"])).id == admin.id
        await orgs.add_member(acme.id, ada.id, admin.id)
    async with database.session() as s:
        orgs = OrganizationRepository(s)
        membership = await orgs.membership(acme.id, ada.id)
        assert membership is not None
        assert membership.role.name == "admin" and membership.role.permissions == ["task:*", "agent:*"]
        with pytest.raises(InvalidRequestError):  # lazy="raise": a query says what it loads
            _ = membership.user
        [mine] = await orgs.memberships_of(ada.id)
        assert (mine.organization.name, mine.role.name) == ("acme", "admin")
        [member] = await orgs.members(acme.id)
        assert member.user.username == "ada"
        assert (await orgs.by_name("acme")) is not None
        assert [r.name for r in await orgs.roles()] == ["admin"]
        assert await orgs.remove_member(acme.id, ada.id)
        assert not await orgs.remove_member(acme.id, ada.id)


async def test_a_user_is_a_member_once(database: Database) -> None:
    async with database.session() as s:
        orgs = OrganizationRepository(s)
        ada = await UserRepository(s).create("ada")
        acme = await orgs.create("acme")
        role = await orgs.ensure_role("member")
        await orgs.add_member(acme.id, ada.id, role.id)
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await OrganizationRepository(s).add_member(acme.id, ada.id, role.id)


async def test_a_role_in_use_cannot_be_deleted(database: Database) -> None:
    async with database.session() as s:
        orgs = OrganizationRepository(s)
        ada = await UserRepository(s).create("ada")
        acme = await orgs.create("acme")
        role = await orgs.ensure_role("member")
        await orgs.add_member(acme.id, ada.id, role.id)
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await s.delete(await OrganizationRepository(s).role("member"))
