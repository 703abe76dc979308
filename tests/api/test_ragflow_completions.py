"""``POST /api/v1/agents/chat/completions`` over HTTP: ragflow's branches streamed and not, with their exact
framing, the OpenAI-compatible mode, the deprecated aliases, UserFillUp pause and resume on one session."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from tests.support.server import LiveServer

HEX = re.compile(r"[0-9a-f]{32}")


def api(server: LiveServer, user: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {server.tokens[user]}"})


def native_frames(text: str) -> list[str]:
    """The payloads of a native stream, checking its framing: ``data:{json}`` blocks, no space, ``[DONE]`` last."""
    assert text.endswith("\n\n"), text[-200:]
    blocks = text[:-2].split("\n\n")
    for block in blocks:
        assert block.startswith("data:") and not block.startswith("data: "), block
        assert "\n" not in block, block
    assert blocks[-1] == "data:[DONE]"
    return [b[len("data:"):] for b in blocks]


def native_events(text: str) -> list[dict[str, Any]]:
    payloads = native_frames(text)
    return [json.loads(p) for p in payloads[:-1]]


def openai_frames(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n\n"), text[-200:]
    blocks = text[:-2].split("\n\n")
    for block in blocks:
        assert block.startswith("data: "), block
    assert blocks[-1] == "data: [DONE]"
    return [json.loads(b[len("data: "):]) for b in blocks[:-1]]


def names(events: list[dict[str, Any]]) -> list[str]:
    return [e.get("event", "") for e in events]


def text_of(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"].get("content", "") for e in events if e.get("event") == "message")


@pytest.fixture
def echo(sqlite_server: LiveServer) -> str:
    return str(sqlite_server.agents["Echo"]["id"]).replace("-", "")


@pytest.fixture
def topics(sqlite_server: LiveServer) -> str:
    return str(sqlite_server.agents["Quickstart: topics"]["id"]).replace("-", "")


def agent_session(server: LiveServer, user: str, agent_id: str) -> str:
    with api(server, user) as c:
        created = c.post(f"/agents/{agent_id}/sessions", json={}).json()
    assert created["code"] == 0, created
    return str(created["data"]["id"])


# ---------------------------------------------------------------------------- refusals
def test_agent_id_is_required(sqlite_server: LiveServer) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions", json={"query": "hello", "stream": False})
    assert answer.status_code == 200
    assert answer.json() == {"code": 101, "message": "`agent_id` is required.", "data": False}


def test_an_agent_the_caller_cannot_reach_is_refused_with_103(sqlite_server: LiveServer) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions", json={"agent_id": "0" * 32, "query": "hi"}).json()
    assert answer == {"code": 103, "message": "Make sure you have permission to access the agent.", "data": False}


def test_sessions_of_others_and_of_other_agents_are_refused(sqlite_server: LiveServer, echo: str,
                                                             topics: str) -> None:
    session = agent_session(sqlite_server, "alice", echo)
    with api(sqlite_server, "bob") as c:
        other = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "hi", "session_id": session})
    with api(sqlite_server, "alice") as c:
        wrong_agent = c.post("/agents/chat/completions",
                             json={"agent_id": topics, "query": "hi", "session_id": session})
        unknown = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "hi", "session_id": "nope"})
    assert other.json() == {"code": 102, "message": "Session not found!"}
    assert wrong_agent.json() == {"code": 103, "message": "Session does not belong to the requested agent.",
                                  "data": False}
    assert unknown.json() == {"code": 102, "message": "Session not found!"}


# ---------------------------------------------------------------------------- no session: a workflow session
def test_without_a_session_the_answer_is_the_last_event_with_the_whole_content(sqlite_server: LiveServer,
                                                                               echo: str) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "hi there"}).json()
        sessions = c.get(f"/agents/{echo}/sessions").json()["data"]
    assert set(answer) == {"code", "data"} and answer["code"] == 0
    final = answer["data"]
    assert final["event"] == "workflow_finished"
    assert final["data"]["content"] == "You said: hi there"
    assert final["data"]["reference"] == {}
    assert HEX.fullmatch(final["session_id"]) and final["task_id"] == final["session_id"]
    assert HEX.fullmatch(final["message_id"])
    made = next(s for s in sessions if s["id"] == final["session_id"])
    assert made["source"] == "workflow" and made["name"] == "hi there" and made["agent_id"] == echo
    assert [m["role"] for m in made["message"]] == ["user", "assistant"]
    assert made["message"][1]["content"] == "You said: hi there"


def test_without_a_session_the_stream_forwards_every_event(sqlite_server: LiveServer, echo: str) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "hi", "stream": True})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["x-accel-buffering"] == "no"
    events = native_events(answer.text)
    assert names(events) == ["workflow_started", "node_started", "node_finished", "node_started", "message",
                             "message", "message_end", "node_finished", "workflow_finished"]
    assert text_of(events) == "You said: hi"
    session = events[0]["session_id"]
    assert all(e["session_id"] == session and e["task_id"] == session for e in events)
    assert len({e["message_id"] for e in events}) == 1


def test_a_workflow_session_goes_on_with_every_event(sqlite_server: LiveServer, echo: str) -> None:
    with api(sqlite_server, "alice") as c:
        first = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "one"}).json()["data"]
        second = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "two", "stream": True,
                                                          "session_id": first["session_id"]})
        stored = c.get(f"/agents/{echo}/sessions/{first['session_id']}").json()["data"]
    events = native_events(second.text)
    assert names(events)[0] == "workflow_started" and names(events)[-1] == "workflow_finished"
    assert text_of(events) == "You said: two"
    assert [m["content"] for m in stored["message"]] == ["one", "You said: one", "two", "You said: two"]


# ---------------------------------------------------------------------------- an agent session (branch 4)
def test_an_agent_session_streams_only_its_events(sqlite_server: LiveServer, echo: str) -> None:
    session = agent_session(sqlite_server, "alice", echo)
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions",
                        json={"agent_id": echo, "query": "hi", "stream": True, "session_id": session})
    events = native_events(answer.text)
    assert names(events) == ["node_finished", "message", "message", "message_end", "node_finished",
                             "workflow_finished"]
    assert set(events[-1]["data"]) == {"usage"}
    assert "trace" not in events[0]["data"]
    assert text_of(events) == "You said: hi"


def test_an_agent_session_answers_with_its_last_message_end(sqlite_server: LiveServer, echo: str) -> None:
    session = agent_session(sqlite_server, "alice", echo)
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions",
                        json={"agent_id": echo, "question": "hello", "session_id": session}).json()
    assert answer["code"] == 0
    final = answer["data"]
    assert final["event"] == "message_end" and final["session_id"] == session
    assert final["data"]["content"] == "You said: hello"
    assert set(final["data"]["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert "trace" not in final["data"]


def test_return_trace_adds_the_finished_nodes(sqlite_server: LiveServer, echo: str) -> None:
    session = agent_session(sqlite_server, "alice", echo)
    with api(sqlite_server, "alice") as c:
        streamed = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "a", "stream": True,
                                                            "session_id": session, "return_trace": True})
        whole = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "b", "session_id": session,
                                                         "return_trace": True}).json()
    finished = [e for e in native_events(streamed.text) if e["event"] == "node_finished"]
    assert [len(e["data"]["trace"]) for e in finished] == [1, 2]
    assert [t["component_id"] for t in finished[-1]["data"]["trace"]] == ["begin", "Message:Echo"]
    assert [t["component_id"] for t in whole["data"]["data"]["trace"]] == ["begin", "Message:Echo"]


# ---------------------------------------------------------------------------- UserFillUp
def test_a_form_pauses_the_session_and_inputs_resume_it(sqlite_server: LiveServer, topics: str) -> None:
    session = agent_session(sqlite_server, "alice", topics)
    with api(sqlite_server, "alice") as c:
        asked = c.post("/agents/chat/completions",
                       json={"agent_id": topics, "query": "hello", "stream": True, "session_id": session})
        waiting = c.get(f"/agents/{topics}/sessions/{session}").json()["data"]
        answered = c.post("/agents/chat/completions",
                          json={"agent_id": topics, "session_id": session,
                                "inputs": {"topics": {"value": "red, green"}}}).json()
    events = native_events(asked.text)
    pause = events[-1]
    assert pause["event"] == "user_inputs"
    assert list(pause["data"]["inputs"]) == ["topics"]
    assert pause["data"]["tips"] == 'You said "hello". Which topics should I list? (comma separated)'
    assert waiting["status"] == "waiting"
    assert answered["data"]["event"] == "message_end"
    assert "0: red\n1: green" in answered["data"]["data"]["content"]


def test_a_paused_workflow_session_answers_with_the_form(sqlite_server: LiveServer, topics: str) -> None:
    with api(sqlite_server, "alice") as c:
        asked = c.post("/agents/chat/completions", json={"agent_id": topics, "query": "hello"}).json()["data"]
        done = c.post("/agents/chat/completions",
                      json={"agent_id": topics, "session_id": asked["session_id"], "stream": True,
                            "inputs": {"topics": {"value": "a,b,c"}}})
    assert asked["event"] == "user_inputs" and "topics" in asked["data"]["inputs"]
    events = native_events(done.text)
    assert "workflow_started" not in names(events)
    assert "0: a\n1: b\n2: c" in text_of(events)


# ---------------------------------------------------------------------------- OpenAI-compatible
def test_openai_mode_needs_a_message(sqlite_server: LiveServer, echo: str) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions",
                        json={"agent_id": echo, "openai-compatible": True, "model": "m", "messages": []}).json()
    assert answer == {"code": 102, "message": "You must provide at least one message."}


def test_openai_mode_answers_a_raw_chat_completion(sqlite_server: LiveServer, echo: str) -> None:
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "x"},
                {"role": "user", "content": "last"}]
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions", json={"agent_id": echo, "openai-compatible": True,
                                                          "model": "any", "messages": messages}).json()
        sessions = c.get(f"/agents/{echo}/sessions").json()["data"]
    assert set(answer) == {"id", "object", "created", "model", "param", "usage", "choices"}
    assert answer["object"] == "chat.completion" and answer["model"] == echo and answer["param"] is None
    assert answer["choices"] == [{"message": {"role": "assistant", "content": "You said: last"}, "logprobs": None,
                                  "finish_reason": "stop", "index": 0}]
    usage = answer["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert usage["completion_tokens_details"] == {"reasoning_tokens": 0, "accepted_prediction_tokens": 0,
                                                  "rejected_prediction_tokens": 0}
    assert any(s["id"] == answer["id"] and s["source"] == "agent" for s in sessions)


def test_openai_mode_streams_chunks_with_a_space_after_data(sqlite_server: LiveServer, echo: str) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completions",
                        json={"agent_id": echo, "openai-compatible": True, "stream": True,
                              "messages": [{"role": "user", "content": "hi"}]})
        again = c.post("/agents/chat/completions",
                       json={"agent_id": echo, "openai-compatible": True, "stream": False,
                             "session_id": openai_frames(answer.text)[0]["id"],
                             "messages": [{"role": "user", "content": "more"}]}).json()
    assert answer.headers["content-type"] == "text/event-stream; charset=utf-8"
    chunks = openai_frames(answer.text)
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "You said: hi"
    assert all(c["choices"][0]["finish_reason"] is None and c["usage"] is None for c in chunks)
    assert set(chunks[0]["choices"][0]["delta"]) == {"content", "role", "function_call", "tool_calls"}
    assert again["id"] == chunks[0]["id"] and again["choices"][0]["message"]["content"] == "You said: more"


# ---------------------------------------------------------------------------- deprecated aliases
def test_the_deprecated_agent_route_streams_messages_only(sqlite_server: LiveServer, echo: str) -> None:
    session = agent_session(sqlite_server, "alice", echo)
    with api(sqlite_server, "alice") as c:
        streamed = c.post(f"/agents/{echo}/completions",
                          json={"question": "hi", "stream": True, "session_id": session})
        whole = c.post(f"/agents/{echo}/completions", json={"question": "yo", "session_id": session}).json()
    assert names(native_events(streamed.text)) == ["message", "message", "message_end"]
    assert whole["data"]["data"]["content"] == "You said: yo"


def test_the_deprecated_openai_route_forces_openai_mode(sqlite_server: LiveServer, echo: str) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post(f"/agents_openai/{echo}/chat/completions",
                        json={"messages": [{"role": "user", "content": "ping"}]}).json()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "You said: ping"


def test_the_singular_route_does_not_exist(sqlite_server: LiveServer) -> None:
    with api(sqlite_server, "alice") as c:
        answer = c.post("/agents/chat/completion", json={})
    assert answer.status_code == 404 and answer.json()["code"] == 404

