"""Everything a server process holds, opened and closed in one place.

``open_services`` brings the schema up to date, makes the built-in roles and the default
organization, imports the example agents on a first start, and starts the executor (which
picks up runs a previous process left in flight). The HTTP faces and the CLI's admin commands
use the same use cases through this object.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from taskcanvas.assembly import close_services, engine_services
from taskcanvas.config import Settings
from taskcanvas.execution import EventHub, Executor
from taskcanvas.service.accounts import Accounts
from taskcanvas.service.agents import Agents
from taskcanvas.service.auth import Principal
from taskcanvas.service.rbac import SiteRole
from taskcanvas.service.sessions import Sessions
from taskcanvas.service.tasks import Tasks
from taskcanvas.store import Database, migrations
from taskcanvas.store.models import Agent
from taskcanvas.store.repositories import AgentRepository, UserRepository

_log = logging.getLogger(__name__)

EXAMPLES: Mapping[str, tuple[str, str]] = {
    "echo.json": ("Echo", "Says back what you tell it. Needs no model: a first task to try."),
    "quickstart.json": ("Quickstart: topics",
                        "Asks for a list of topics, waits for your answer, then numbers them. Needs no model."),
}
"""The example agents imported on a first start: file in ``taskcanvas/examples`` → (title, description)."""


@dataclass
class Services:
    settings: Settings
    database: Database
    hub: EventHub
    executor: Executor
    accounts: Accounts
    agents: Agents
    tasks: Tasks
    sessions: Sessions
    engine_services: dict[str, Any]

    async def close(self) -> None:
        await self.executor.close()
        await close_services(self.engine_services)
        await self.database.dispose()


def settle_start_up() -> None:
    """Keep what start-up made (modules, mappers, prepared statements, the services) out of the
    garbage collector's full passes: it lives as long as the process. A server calls this once,
    when it is ready; with 256 runs in flight the full passes over it took a fifth of the time."""
    gc.collect()
    gc.freeze()


async def open_services(settings: Settings, *, database: Database | None = None, start: bool = True,
                        concurrency: int | None = None) -> Services:
    database = database or Database.from_settings(settings)
    await migrations.upgrade(database)
    accounts = Accounts(database)
    await accounts.ensure_defaults()
    hub = EventHub()
    services = engine_services(settings)
    executor = Executor(database, settings, services, hub=hub, concurrency=concurrency)
    tasks = Tasks(database, executor, environ=settings.env)
    opened = Services(settings=settings, database=database, hub=hub, executor=executor, accounts=accounts,
                      agents=Agents(database), tasks=tasks, sessions=Sessions(database, executor),
                      engine_services=services)
    if start:
        purged = await tasks.purge_deleted()
        resumed = await executor.start()
        if purged or resumed:
            _log.info("start: %d runs picked up, %d deleted tasks removed", resumed, purged)
    return opened


async def import_examples(services: Services) -> list[Agent]:
    """Import the example agents for the first owner when none has any agent yet (a first start)."""
    async with services.database.session() as s:
        owners = [u for u in await UserRepository(s).find(limit=1000) if u.site_role == SiteRole.OWNER.value]
        if not owners or await AgentRepository(s).find(limit=1):
            return []
    owner = await services.accounts.principal_for(owners[0].id)
    return [await _import(services, owner, name, title, description)
            for name, (title, description) in EXAMPLES.items()]


async def _import(services: Services, owner: Principal, name: str, title: str, description: str) -> Agent:
    dsl = json.loads(resources.files("taskcanvas.examples").joinpath(name).read_text(encoding="utf-8"))
    created = await services.agents.create(owner, title, dsl, description=description, permission="team",
                                           release=True)
    return created.agent
