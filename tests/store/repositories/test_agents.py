from __future__ import annotations

import pytest

from taskcanvas.store import Database, StoreConflict
from taskcanvas.store.repositories import AgentRepository, UserRepository
from tests.store.factories import DSL, make_world


async def test_agents_are_found_and_listed_newest_first(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        bob = await UserRepository(s).create("bob")
        agents = AgentRepository(s)
        first = await agents.create(ada.id, "Research 100%", DSL, description="d")
        await agents.create(ada.id, "Writer", DSL)
        await agents.create(bob.id, "Research too", DSL)
    async with database.session() as s:
        agents = AgentRepository(s)
        agent = await agents.by_title(ada.id, "Research 100%")
        assert agent is not None and agent.id == first.id and agent.dsl == DSL and agent.permission == "me"
        assert [a.title for a in await agents.find(owner_id=ada.id)] == ["Writer", "Research 100%"]
        assert [a.title for a in await agents.find(title_contains="Research")] == ["Research too", "Research 100%"]
        assert [a.title for a in await agents.find(title_contains="100%")] == ["Research 100%"]
        assert [a.title for a in await agents.find(title_contains="0_")] == []


async def test_titles_are_unique_per_owner(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        await AgentRepository(s).create(ada.id, "Same", DSL)
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await AgentRepository(s).create(ada.id, "Same", DSL)


async def test_versions_are_numbered_and_carry_presets(database: Database) -> None:
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        agents = AgentRepository(s)
        agent = await agents.create(ada.id, "A", DSL)
        v1 = await agents.add_version(agent.id, DSL, title="first", created_by=ada.id)
        v2 = await agents.add_version(agent.id, {**DSL, "globals": {"sys.query": ""}})
        await agents.add_preset(v2.id, "quick", {"depth": {"value": 1}}, is_default=True)
        await agents.add_preset(v2.id, "deep", {"depth": {"value": 5}})
    assert (v1.number, v2.number) == (1, 2)
    async with database.session() as s:
        agents = AgentRepository(s)
        latest = await agents.latest_version(agent.id)
        assert latest is not None and latest.id == v2.id
        assert [v.number for v in await agents.versions(agent.id)] == [2, 1]
        presets = await agents.presets(v2.id)
        assert [(p.name, p.is_default) for p in presets] == [("deep", False), ("quick", True)]
        assert (await agents.get_preset(presets[1].id)) is not None
        assert (await agents.get_version(v1.id)) is not None


async def test_deleting_an_agent_takes_its_versions_unless_a_task_uses_it(database: Database) -> None:
    world = await make_world(database)
    with pytest.raises(StoreConflict):
        async with database.session() as s:
            await AgentRepository(s).delete(world.agent_id)
    async with database.session() as s:
        ada = await UserRepository(s).create("ada")
        agents = AgentRepository(s)
        unused = await agents.create(ada.id, "Unused", DSL)
        version = await agents.add_version(unused.id, DSL)
    async with database.session() as s:
        assert await AgentRepository(s).delete(unused.id)
        assert await AgentRepository(s).get_version(version.id) is None
