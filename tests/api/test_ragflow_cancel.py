"""Turns that are still running: ragflow's cancel routes, a busy session, a streaming client that goes away.

The canvas asks a scripted model that does not answer until the test opens a gate, so each
test knows the run is in flight when it acts, without timing anything.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.support.canvas import cpn, make_canvas
from tests.support.server import LiveServer, start_server

CANVAS = make_canvas({
    "begin": cpn("Begin", down=["LLM:Think"]),
    "LLM:Think": cpn("LLM", {"llm_id": "gated@OpenAI", "sys_prompt": "Answer.",
                             "prompts": [{"role": "user", "content": "{sys.query}"}]}, down=["Message:Say"]),
    "Message:Say": cpn("Message", {"content": ["{LLM:Think@content}"]}),
})


class Gate:
    """A model answer held back until :meth:`open`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.asked = threading.Event()

    def reply(self, request: dict[str, Any]) -> Reply:
        self.asked.set()
        self.event.wait(timeout=60)
        return Reply(text="released answer")

    def open(self) -> None:
        self.event.set()


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def gated(request: pytest.FixtureRequest, tmp_path: Path, gate: Gate) -> Iterator[tuple[LiveServer, str]]:
    with ScriptedModelServer([Rule(gate.reply)]) as model:
        env = {"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "test-key"}
        try:
            for server in start_server(tmp_path, "sqlite", request, extra_env=env):
                with api(server, "alice") as c:
                    created = c.post("/agents", json={"title": "Gated", "dsl": CANVAS}).json()
                assert created["code"] == 0, created
                yield server, created["data"]["id"]
        finally:
            gate.open()


def api(server: LiveServer, user: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {server.tokens[user]}"})


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if line.startswith("data:") and line != "data:[DONE]":
            yield json.loads(line[len("data:"):])


def until(check: Any, what: str, timeout: float = 30.0) -> Any:
    """Poll ``check()`` until it returns something truthy (a deadline, not a measured duration)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def test_cancel_stops_the_running_turn_of_a_session(gated: tuple[LiveServer, str], gate: Gate) -> None:
    server, agent = gated
    with api(server, "alice") as c, c.stream("POST", "/agents/chat/completions",
                                             json={"agent_id": agent, "query": "hi", "stream": True}) as stream:
        seen: list[dict[str, Any]] = []
        reader = events(stream.iter_lines())
        for event in reader:
            seen.append(event)
            if event["event"] == "node_started" and event["data"]["component_id"] == "LLM:Think":
                break
        session = seen[0]["session_id"]
        assert gate.asked.wait(30)
        with api(server, "bob") as other:
            assert other.post(f"/tasks/{session}/cancel").json() == {"code": 0, "message": "success", "data": True}
        with api(server, "alice") as again:
            busy = again.post("/agents/chat/completions",
                              json={"agent_id": agent, "query": "more", "session_id": session}).json()
            cancelled = again.post(f"/tasks/{session}/cancel").json()
        seen.extend(reader)
    assert busy["code"] == 103 and busy["message"] == "This agent session is already running."
    assert cancelled == {"code": 0, "message": "success", "data": True}
    finished = seen[-1]
    assert finished["event"] == "workflow_finished"
    assert finished["data"]["outputs"] == "Task has been canceled"
    assert finished["data"]["status"] == "cancelled"
    assert "message" not in [e["event"] for e in seen]


def test_patch_stop_cancels_and_other_actions_are_refused(gated: tuple[LiveServer, str], gate: Gate) -> None:
    server, agent = gated
    with api(server, "alice") as c:
        session = c.post(f"/agents/{agent}/sessions", json={}).json()["data"]["id"]
        with c.stream("POST", "/agents/chat/completions",
                      json={"agent_id": agent, "query": "hi", "stream": True, "session_id": session}) as stream:
            assert gate.asked.wait(30)
            wrong = c.patch(f"/tasks/{session}", json={"action": "pause"}).json()
            missing = c.patch(f"/tasks/{session}", json={}).json()
            stopped = c.patch(f"/tasks/{session}", json={"action": "stop"}).json()
            seen = list(events(stream.iter_lines()))
        unknown = c.post("/tasks/not-a-session/cancel").json()
        stored = c.get(f"/agents/{agent}/sessions/{session}").json()["data"]
    assert wrong == {"code": 101, "message": "Invalid action 'pause'. Only 'stop' is supported.", "data": None}
    assert missing == {"code": 101, "message": "required argument are missing: action; ", "data": None}
    assert stopped == {"code": 0, "message": "success", "data": True}
    assert unknown == {"code": 0, "message": "success", "data": True}
    assert seen[-1]["event"] == "workflow_finished" and set(seen[-1]["data"]) == {"usage"}
    assert stored["status"] == "cancelled"


def test_a_client_that_goes_away_does_not_stop_the_run(gated: tuple[LiveServer, str], gate: Gate) -> None:
    server, agent = gated
    with api(server, "alice") as c:
        with c.stream("POST", "/agents/chat/completions",
                      json={"agent_id": agent, "query": "hi", "stream": True}) as stream:
            first = next(events(stream.iter_lines()))
            assert gate.asked.wait(30)
        session = first["session_id"]
        gate.open()

        def answered() -> Any:
            stored = c.get(f"/agents/{agent}/sessions/{session}").json()["data"]
            return stored if stored["status"] == "finished" else None

        stored = until(answered, "the run to finish after its client left")
    assert [m["content"] for m in stored["message"]] == ["hi", "released answer"]
