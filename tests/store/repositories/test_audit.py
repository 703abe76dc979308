from __future__ import annotations

import datetime

from sqlalchemy import delete

from taskcanvas.store import Database
from taskcanvas.store.models import User
from taskcanvas.store.models.types import utcnow
from taskcanvas.store.repositories import AuditRepository, OrganizationRepository, UserRepository


async def test_entries_are_filtered_and_read_newest_first(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        org = await OrganizationRepository(s).create("acme")
        audit = AuditRepository(s)
        await audit.record("create", "task", resource_id="t1", actor_id=ada.id, actor_name="ada",
                           organization_id=org.id, status_code=201, ip="127.0.0.1", user_agent="curl",
                           request_id="r1", details={"name": "t1"})
        await audit.record("delete", "task", resource_id="t1", actor_id=ada.id, actor_name="ada")
        await audit.record("login", "user", resource_id=str(ada.id))
    async with database.session() as s:
        audit = AuditRepository(s)
        assert [e.action for e in await audit.find()] == ["login", "delete", "create"]
        assert [e.action for e in await audit.find(actor_id=ada.id)] == ["delete", "create"]
        assert [e.action for e in await audit.find(resource_type="task", resource_id="t1")] == ["delete", "create"]
        assert [e.action for e in await audit.find(organization_id=org.id)] == ["create"]
        assert [e.action for e in await audit.find(action="login", resource_id=ada.id)] == ["login"]
        [created] = await audit.find(action="create")
        assert (created.status_code, created.details) == (201, {"name": "t1"})


async def test_entries_outlive_their_actor_and_can_be_pruned(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        await AuditRepository(s).record("create", "task", actor_id=ada.id, actor_name="ada")
    async with database.session() as s:
        await s.execute(delete(User).where(User.id == ada.id))
    async with database.session() as s:
        [entry] = await AuditRepository(s).find()
        assert (entry.actor_id, entry.actor_name) == (None, "ada")
        assert await AuditRepository(s).prune(utcnow() - datetime.timedelta(days=1)) == 0
        assert await AuditRepository(s).prune(utcnow() + datetime.timedelta(seconds=1)) == 1
