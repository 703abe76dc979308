"""ragflow's own Python SDK (``ragflow_sdk``, the 0.22 line installable on Python 3.11) against a live server.

The SDK's agent and session calls work as they are. Two things the installed SDK predates are
reached through its own client and classes instead: ``RAGFlow.list_agents`` of 0.22 reads
``data`` as a list (ragflow's old ``/agents`` answer), while ragflow now answers
``{"canvas": [...], "total": n}`` — as taskcanvas does —; and 0.22 has no ``get_agent``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from ragflow_sdk import RAGFlow
from ragflow_sdk.modules.agent import Agent

from tests.support.server import LiveServer

DSL = {
    "components": {
        "begin": {"obj": {"component_name": "Begin", "params": {"prologue": "Say something."}},
                  "downstream": ["Message:Echo"], "upstream": []},
        "Message:Echo": {"obj": {"component_name": "Message", "params": {"content": ["Echo: {sys.query}"]}},
                         "downstream": [], "upstream": ["begin"]},
    },
    "history": [], "path": [], "retrieval": [],
    "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": []},
}


@pytest.fixture
def rag(sqlite_server: LiveServer) -> RAGFlow:
    return RAGFlow(api_key=sqlite_server.tokens["alice"], base_url=sqlite_server.url)


def listed(rag: RAGFlow, **params: Any) -> list[Agent]:
    """ragflow's current ``GET /agents`` through the SDK's client, as its newer ``list_agents`` reads it."""
    answer = rag.get("/agents", params).json()
    assert answer["code"] == 0, answer
    return [Agent(rag, item) for item in answer["data"]["canvas"]]


def fetched(rag: RAGFlow, agent_id: str) -> Agent:
    """``GET /agents/<id>`` through the SDK's client (its newer ``get_agent``)."""
    answer = rag.get(f"/agents/{agent_id}").json()
    assert answer["code"] == 0, answer
    return Agent(rag, answer["data"])


def until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_agents_are_created_listed_fetched_updated_and_deleted(rag: RAGFlow) -> None:
    rag.create_agent("SDK agent", DSL, description="made by the SDK")
    agents = listed(rag, page=1, page_size=30, orderby="create_time", desc=True)
    assert agents[0].title == "SDK agent"  # newest first
    assert {a.title for a in agents} >= {"SDK agent", "Echo", "Quickstart: topics"}
    made = fetched(rag, agents[0].id)
    assert made.description == "made by the SDK" and made.dsl.components.begin.obj.component_name == "Begin"
    rag.update_agent(made.id, title="SDK agent, renamed")
    assert fetched(rag, made.id).title == "SDK agent, renamed"
    rag.delete_agent(made.id)
    assert "SDK agent, renamed" not in {a.title for a in listed(rag)}
    rag.create_agent("Twice", DSL)
    with pytest.raises(Exception, match="Twice already exists"):
        rag.create_agent("Twice", DSL)


def test_a_session_answers_streamed_and_not(rag: RAGFlow) -> None:
    rag.create_agent("Echoer", DSL)
    agent = next(a for a in listed(rag) if a.title == "Echoer")
    session = agent.create_session()
    assert session.agent_id == agent.id
    assert session.message == [{"role": "assistant", "content": "Say something."}]
    whole = list(session.ask("hello", stream=False))
    streamed = "".join(m.content for m in session.ask("again", stream=True))
    assert [m.content for m in whole] == ["Echo: hello"]
    assert streamed == "Echo: again"
    # The streamed answer ends at its message_end; the turn is stored when the run ends, right after.
    sessions = until(lambda: [s for s in agent.list_sessions() if len(s.message) == 5])
    assert [s.id for s in sessions] == [session.id]
    assert [m["content"] for m in sessions[0].message] == [
        "Say something.", "hello", "Echo: hello", "again", "Echo: again"]


def test_sessions_are_deleted(rag: RAGFlow, sqlite_server: LiveServer) -> None:
    agent = fetched(rag, str(sqlite_server.agents["Echo"]["id"]))
    kept, dropped = agent.create_session(), agent.create_session()
    agent.delete_sessions(ids=[dropped.id])
    assert [s.id for s in agent.list_sessions()] == [kept.id]
    with pytest.raises(Exception, match="doesn't own the session"):
        agent.delete_sessions(ids=[dropped.id])
    agent.delete_sessions(ids=[kept.id])
    assert agent.list_sessions() == []
