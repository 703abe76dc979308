"""ragflow's agent sessions as use cases, on SQLite and PostgreSQL with the embedded executor."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from taskcanvas.config import Settings
from taskcanvas.execution import follow
from taskcanvas.service.auth import Principal
from taskcanvas.service.errors import Forbidden, Invalid, NotFound
from taskcanvas.service.services import Services, import_examples, open_services
from taskcanvas.service.sessions import (
    DEFAULT_PROLOGUE,
    WEBHOOK_SOURCE,
    Sessions,
    Turn,
    parse_id,
    prologue,
)
from taskcanvas.store import Database
from taskcanvas.store.models import Agent
from tests.store.databases import database, postgres_url
from tests.support.canvas import cpn, make_canvas

__all__ = ["database", "postgres_url"]


@pytest.fixture
async def services(database: Database, tmp_path: Path) -> AsyncIterator[Services]:
    settings = Settings.load({"TASKCANVAS_DATA_DIR": str(tmp_path / "data")})
    opened = await open_services(settings, database=database)
    try:
        yield opened
    finally:
        await opened.close()


async def people(services: Services) -> tuple[Principal, Principal, Principal, Agent]:
    made = {}
    for name, role in (("owner", "owner"), ("alice", "member"), ("bob", "member")):
        user = await services.accounts.create_user(name, role=role)
        made[name] = await services.accounts.principal_for(user.id)
    echo = next(a for a in await import_examples(services) if a.title == "Echo")
    return made["owner"], made["alice"], made["bob"], echo


async def answer(services: Services, turn: Turn) -> str:
    """The turn's messages, once its run has stopped."""
    text = ""
    async for _, event in follow(services.database, services.hub, turn.run.id, turn.session.id):
        if event["event"] == "message":
            text += event["data"]["content"]
    return text


def test_ids_and_prologues() -> None:
    value = uuid.uuid4()
    assert parse_id(value.hex) == value and parse_id(str(value)) == value
    assert parse_id("not-an-id") is None and parse_id(None) is None and parse_id("") is None
    begin: dict[str, Any] = {"components": {"begin": {
        "obj": {"component_name": "Begin", "params": {}}, "downstream": [], "upstream": []}}}
    assert prologue(begin) == DEFAULT_PROLOGUE
    begin["components"]["begin"]["obj"]["params"] = {"prologue": "Hello!"}
    assert prologue(begin) == "Hello!"
    assert prologue({"components": "broken"}) == DEFAULT_PROLOGUE


async def test_a_turn_without_a_session_makes_one_and_the_next_goes_on_in_it(services: Services) -> None:
    _, alice, bob, echo = await people(services)
    sessions = Sessions(services.database, services.executor)
    first = await sessions.start_turn(alice, echo.id, query="hi", user_id="visitor")
    assert first.created and first.session.source == "workflow" and first.session.external_user == "visitor"
    assert await answer(services, first) == "You said: hi"
    second = await sessions.start_turn(alice, echo.id, session_id=first.session.id.hex, query="again")
    assert not second.created and second.session.id == first.session.id and second.run.number == 2
    assert await answer(services, second) == "You said: again"
    with pytest.raises(NotFound, match="Session not found!"):
        await sessions.start_turn(bob, echo.id, session_id=first.session.id.hex, query="mine now")
    with pytest.raises(Forbidden, match="does not belong to the requested agent"):
        await sessions.start_turn(alice, uuid.uuid4(), session_id=first.session.id.hex, query="x")
    with pytest.raises(Invalid):
        await sessions.start_turn(alice, echo.id, query="x", inputs=["not", "an", "object"])


async def test_webhook_sessions_stay_out_of_the_ragflow_api(services: Services) -> None:
    owner, _, _, echo = await people(services)
    sessions = Sessions(services.database, services.executor)
    target = await sessions.webhook_target(echo.id)
    assert target is not None and target[0].id == echo.id
    turn = await sessions.start_webhook_run(target[0], target[1], {"body": {"value": {"a": 1}}})
    assert turn.session.source == WEBHOOK_SOURCE and turn.session.user_id == echo.owner_id
    await answer(services, turn)
    listed, total = await sessions.list_sessions(owner, echo.id)
    assert listed == [] and total == 0
    with pytest.raises(NotFound):
        await sessions.start_turn(owner, echo.id, session_id=turn.session.id.hex, query="x")
    runs = await sessions.webhook_runs(owner, echo.id)
    assert [run.id for run, _ in runs] == [turn.run.id] and runs[0][1][-1].name == "workflow_finished"
    assert await sessions.webhook_target(uuid.uuid4()) is None


async def test_cancel_touches_only_the_callers_running_turn(services: Services) -> None:
    _, alice, bob, echo = await people(services)
    sessions = Sessions(services.database, services.executor)
    turn = await sessions.start_turn(alice, echo.id, query="hi")
    assert await sessions.cancel(bob, turn.session.id.hex) is False
    await answer(services, turn)
    assert await sessions.cancel(alice, turn.session.id.hex) is False  # nothing is running any more
    assert await sessions.cancel(alice, "junk") is False
    run = await sessions.run(turn.run.id)
    assert run is not None and run.status == "finished"


async def test_bulk_delete_reports_each_id(services: Services) -> None:
    _, alice, bob, echo = await people(services)
    sessions = Sessions(services.database, services.executor)
    mine = [await sessions.create_session(alice, echo.id) for _ in range(2)]
    his = await sessions.create_session(bob, echo.id)
    done = await sessions.delete_sessions(alice, echo.id, [mine[0].session.id.hex, his.session.id.hex, "x", "x"])
    assert done.count == 1
    assert done.errors == [f"The agent doesn't own the session {his.session.id.hex}",
                           "The agent doesn't own the session x"]
    assert done.duplicates == ["Duplicate session ids: x"]
    everything = await sessions.delete_sessions(alice, echo.id, None, delete_all=True)
    assert everything.count == 1
    assert [v.session.id for v in (await sessions.list_sessions(bob, echo.id))[0]] == [his.session.id]


async def test_a_new_session_runs_the_newest_or_the_published_version(services: Services) -> None:
    _, alice, _, _ = await people(services)
    dsl = make_canvas({"begin": cpn("Begin", {"prologue": "v1"}, down=["m"]), "m": cpn("Message", {"content": ["1"]})})
    created = await services.agents.create(alice, "Versions", dsl, release=True)
    dsl2 = make_canvas({"begin": cpn("Begin", {"prologue": "v2"}, down=["m"]), "m": cpn("Message", {"content": ["2"]})})
    await services.agents.update(alice, created.agent.id, dsl=dsl2)
    sessions = Sessions(services.database, services.executor)
    newest = await sessions.create_session(alice, created.agent.id)
    published = await sessions.create_session(alice, created.agent.id, release=True)
    assert newest.session.messages[0]["content"] == "v2"
    assert published.session.messages[0]["content"] == "v1"
    turn = await sessions.start_turn(alice, created.agent.id, session_id=published.session.id.hex, query="x")
    assert await answer(services, turn) == "1"
