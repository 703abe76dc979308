"""coder's Tasks API on /api/v2, through HTTP as coder's clients use it (coder_tasks_spec.md §11).

The Echo agent answers at once; Quickstart waits for input (the task goes idle) and completes
after a ``send``. A scripted model that answers only when the test lets it keeps a run busy, for
what coder refuses while the task's app is working.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from taskcanvas.config import Settings
from taskcanvas.service.services import open_services
from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.support.canvas import cpn, make_canvas
from tests.support.server import LiveServer, start_server

ECHO = "Echo"
QUICKSTART = "Quickstart: topics"
VERSION_NOT_FOUND = "Template version not found or you do not have access to this resource"
NOT_FOUND = "Resource not found or you do not have access to this resource"
NAME_RE = re.compile(r"^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$")
TASK_FIELDS = {
    "id", "organization_id", "owner_id", "owner_name", "owner_avatar_url", "name", "display_name", "template_id",
    "template_version_id", "template_name", "template_display_name", "template_icon", "workspace_id",
    "workspace_name", "workspace_status", "workspace_build_number", "workspace_agent_id",
    "workspace_agent_lifecycle", "workspace_agent_health", "workspace_app_id", "initial_prompt", "status",
    "current_state", "created_at", "updated_at", "workspace_build_id",
}


# ---------------------------------------------------------------------------- helpers (also used by the
# experimental face's tests)


def version_of(server: LiveServer, agent: str = ECHO) -> str:
    return str(server.agents[agent]["version_id"])


def create(server: LiveServer, user: str, text: str, *, agent: str = ECHO, owner: str = "me",
           **fields: Any) -> dict[str, Any]:
    with server.client(user) as c:
        answer = c.post(f"/api/v2/tasks/{owner}", json={"template_version_id": version_of(server, agent),
                                                        "input": text, **fields})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def state_is(state: str) -> Callable[[dict[str, Any]], bool]:
    return lambda task: (task.get("current_state") or {}).get("state") == state


def settled(server: LiveServer, user: str, task_id: str, state: str) -> dict[str, Any]:
    task = server.wait_for_task(user, task_id, until=state_is(state))
    assert state_is(state)(task), task
    return task


def sse_events(source: httpx.Response | Iterator[str], *, stop: Callable[[dict[str, Any]], bool] | None = None,
               limit: float = 30.0) -> list[dict[str, Any]]:
    """The events of an SSE response (``id``, ``event``, ``data``) until it ends or ``stop(event)`` holds.

    To read on after a ``stop``, pass the same ``response.iter_lines()`` iterator again.
    """
    lines = source.iter_lines() if isinstance(source, httpx.Response) else source
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + limit
    for line in lines:
        if time.monotonic() > deadline:
            raise AssertionError(f"the stream did not get there; events so far: {events}")
        if line == "":
            if "data" in current or "id" in current:
                events.append(current)
                if stop is not None and stop(current):
                    return events
            current = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        current[name] = current[name] + "\n" + value if name == "data" and "data" in current else value
    return events


def event_key(event: dict[str, Any]) -> tuple[int, int]:
    run, seq = event["id"].split(".")
    return int(run), int(seq)


# ---------------------------------------------------------------------------- a busy run


@dataclass
class Held:
    server: LiveServer
    version: str
    """The "Held" agent's version: one LLM step, then a Message with its answer."""
    release: threading.Event
    """Set it and the model answers (a prompt with "abandon" is answered only after a minute)."""
    model: ScriptedModelServer


@pytest.fixture
def held(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Held]:
    """A server whose "Held" agent asks a model that answers only when the test lets it: its run stays busy."""
    release = threading.Event()

    def answer(_: dict[str, Any]) -> Reply:
        release.wait(60)
        return Reply(text="the model answered")

    rules = [Rule(Reply(text="too late", delay=60), last_user_contains="abandon"), Rule(answer)]
    with ScriptedModelServer(rules) as model:
        env = {"OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": "test-key"}
        servers = start_server(tmp_path, "sqlite", request, extra_env=env)
        server = next(servers)
        version = asyncio.run(_add_held_agent(server))
        try:
            yield Held(server, version, release, model)
        finally:
            release.set()
            next(servers, None)


async def _add_held_agent(server: LiveServer) -> str:
    dsl = make_canvas({
        "begin": cpn("Begin", down=["ask"]),
        "ask": cpn("LLM", {"llm_id": "held@OpenAI", "sys_prompt": "Answer.",
                           "prompts": [{"role": "user", "content": "{sys.query}"}]}, down=["say"]),
        "say": cpn("Message", {"content": ["{ask@content}"]}),
    })
    services = await open_services(Settings.load(server.env), start=False)
    try:
        owner = await services.accounts.principal_for(uuid.UUID(server.user_ids["admin"]))
        created = await services.agents.create(owner, "Held", dsl, permission="team")
        return str(created.version.id)
    finally:
        await services.close()


# ---------------------------------------------------------------------------- create


def test_a_task_runs_to_complete_and_reads_as_coder_writes_it(server: LiveServer) -> None:
    task = create(server, "alice", "hello there")
    assert set(task) == TASK_FIELDS
    assert task["owner_id"] == server.user_ids["alice"] and task["owner_name"] == "alice"
    assert NAME_RE.fullmatch(task["name"]) and task["display_name"]
    assert task["template_id"] == server.agents[ECHO]["id"]
    assert task["template_version_id"] == version_of(server)
    assert task["template_name"] == "echo" and task["template_display_name"] == ECHO
    assert uuid.UUID(task["workspace_id"]) and task["workspace_name"] == task["name"]
    assert task["initial_prompt"] == "hello there"
    assert task["workspace_agent_id"] is None and task["workspace_app_id"] is None

    done = settled(server, "alice", task["id"], "complete")
    assert done["status"] == "active"
    assert done["workspace_status"] == "running"
    assert done["workspace_build_number"] == 1 and uuid.UUID(done["workspace_build_id"])
    assert done["current_state"]["message"] == "You said: hello there"
    assert done["created_at"].endswith("Z") and done["updated_at"] >= done["created_at"]


def test_names_given_are_kept_and_the_missing_ones_generated(sqlite_server: LiveServer) -> None:
    named = create(sqlite_server, "alice", "fix the login page", name="a-valid-task-name")
    assert named["name"] == "a-valid-task-name" and named["display_name"]

    shown = create(sqlite_server, "alice", "fix the login page", display_name="  Login fix  ")
    assert shown["display_name"] == "Login fix" and NAME_RE.fullmatch(shown["name"])

    neither = create(sqlite_server, "alice", "build my app")
    assert neither["name"].startswith("build-my-app-") and neither["display_name"] == "Build my app"

    # An owner may create a task for a member; a member may not create one for another.
    for_alice = create(sqlite_server, "admin", "for alice", owner="alice")
    assert for_alice["owner_name"] == "alice"
    with sqlite_server.client("alice") as c:
        assert c.get(f"/api/v2/tasks/me/{for_alice['id']}").status_code == 200
    with sqlite_server.client("bob") as c:
        refused = c.post("/api/v2/tasks/alice", json={"template_version_id": version_of(sqlite_server),
                                                      "input": "x"})
    assert refused.status_code == 404




def test_bad_requests_are_refused_in_coders_words(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("alice") as c:
        bad_name = c.post("/api/v2/tasks/me", json={"template_version_id": version_of(sqlite_server),
                                                    "input": "x", "name": "this is not a valid task name"})
        long_display = c.post("/api/v2/tasks/me", json={"template_version_id": version_of(sqlite_server),
                                                        "input": "x", "display_name": "x" * 65})
        random_version = c.post("/api/v2/tasks/me", json={"template_version_id": str(uuid.uuid4()), "input": "x"})
        no_version = c.post("/api/v2/tasks/me", json={"input": "x"})
        broken = c.post("/api/v2/tasks/me", content=b"{not json", headers={"Content-Type": "application/json"})
        nobody = c.post("/api/v2/tasks/nobody", json={"template_version_id": version_of(sqlite_server),
                                                      "input": "x"})
    assert bad_name.status_code == 400
    assert bad_name.json()["message"] == "Unable to create a Task with the provided name."
    assert bad_name.json()["detail"] == "must be alphanumeric with hyphens"
    assert long_display.status_code == 400
    assert long_display.json()["message"] == "Display name must be 64 characters or less."
    assert random_version.status_code == 400 and random_version.json()["message"] == VERSION_NOT_FOUND
    assert no_version.status_code == 400 and no_version.json()["message"] == VERSION_NOT_FOUND
    assert broken.status_code == 400 and broken.json()["message"] == "Request body must be valid JSON."
    assert nobody.status_code == 404 and nobody.json()["message"] == NOT_FOUND

    with sqlite_server.client() as c:
        for method, path in (("GET", "/api/v2/tasks"), ("POST", "/api/v2/tasks/me"),
                             ("GET", f"/api/v2/tasks/me/{uuid.uuid4()}"),
                             ("GET", f"/api/v2/tasks/me/{uuid.uuid4()}/events")):
            answer = c.request(method, path)
            assert answer.status_code == 401, path
            assert answer.json()["message"].startswith("You are signed out")
        assert c.get("/api/v2/tasks", headers={"Coder-Session-Token": "tc_0000_nope"}).status_code == 401


# ---------------------------------------------------------------------------- list


def test_lists_are_newest_first_and_filter_as_coders_query_says(sqlite_server: LiveServer) -> None:
    first = create(sqlite_server, "alice", "one")
    second = create(sqlite_server, "alice", "two")
    bobs = create(sqlite_server, "bob", "three")
    settled(sqlite_server, "alice", first["id"], "complete")
    settled(sqlite_server, "alice", second["id"], "complete")
    settled(sqlite_server, "bob", bobs["id"], "complete")

    def ids(user: str, q: str) -> list[str]:
        with sqlite_server.client(user) as c:
            answer = c.get("/api/v2/tasks", params={"q": q})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["count"] == len(body["tasks"])
        return [t["id"] for t in body["tasks"]]

    assert ids("alice", "") == [second["id"], first["id"]]
    assert ids("alice", "owner:me") == [second["id"], first["id"]]
    assert ids("admin", "") == [bobs["id"], second["id"], first["id"]]
    assert ids("admin", "owner:alice") == [second["id"], first["id"]]
    assert ids("admin", "bob") == [bobs["id"]]
    assert ids("admin", f'owner:"{sqlite_server.user_ids["bob"]}"') == [bobs["id"]]
    assert ids("admin", "status:active organization:default") == [bobs["id"], second["id"], first["id"]]
    assert ids("admin", "status:paused") == []
    assert ids("audrey", "") == [bobs["id"], second["id"], first["id"]]
    assert ids("bob", "") == [bobs["id"]]

    with sqlite_server.client("admin") as c:
        unknown_user = c.get("/api/v2/tasks", params={"q": "owner:nobody"})
        unknown_org = c.get("/api/v2/tasks", params={"q": "organization:nowhere"})
        bad_key = c.get("/api/v2/tasks", params={"q": "colour:blue"})
        bad_element = c.get("/api/v2/tasks", params={"q": "owner:"})
    assert unknown_user.status_code == 400
    assert unknown_user.json() == {"message": "Invalid task search query.", "validations": [
        {"field": "owner", "detail": 'Query param "owner" has invalid value: user "nobody" either does not exist, '
                                     "or you are unauthorized to view them"}]}
    assert unknown_org.status_code == 400
    assert "either does not exist, or you are unauthorized to view it" in unknown_org.json()["validations"][0]["detail"]
    assert bad_key.status_code == 400 and bad_key.json()["validations"] == [
        {"field": "colour", "detail": '"colour" is not a valid query param'}]
    assert bad_element.status_code == 400
    assert bad_element.json()["validations"][0]["detail"] == "Query element \"owner:\" cannot start or end with ':'"


# ---------------------------------------------------------------------------- get, delete


def test_get_by_id_and_by_name_are_identical_and_hidden_from_others(server: LiveServer) -> None:
    task = create(server, "alice", "hello")
    settled(server, "alice", task["id"], "complete")
    with server.client("alice") as c:
        by_id = c.get(f"/api/v2/tasks/me/{task['id']}")
        by_name = c.get(f"/api/v2/tasks/alice/{task['name']}")
        by_upper_name = c.get(f"/api/v2/tasks/me/{task['name'].upper()}")
    assert by_id.status_code == by_name.status_code == by_upper_name.status_code == 200
    assert by_id.json() == by_name.json() == by_upper_name.json()

    with server.client("bob") as c:
        for path in (f"/api/v2/tasks/me/{task['id']}", f"/api/v2/tasks/alice/{task['id']}",
                     f"/api/v2/tasks/alice/{task['name']}", f"/api/v2/tasks/me/{task['name']}"):
            answer = c.get(path)
            assert answer.status_code == 404, path
            assert answer.json() == {"message": NOT_FOUND}
    with server.client("admin") as c:
        assert c.get(f"/api/v2/tasks/alice/{task['name']}").json() == by_id.json()


def test_delete_hides_the_task_at_once(sqlite_server: LiveServer) -> None:
    task = create(sqlite_server, "alice", "short lived")
    with sqlite_server.client("bob") as c:
        assert c.delete(f"/api/v2/tasks/alice/{task['id']}").status_code == 404
    with sqlite_server.client("alice") as c:
        gone = c.delete(f"/api/v2/tasks/me/{task['id']}")
        again = c.delete(f"/api/v2/tasks/me/{task['id']}")
        read = c.get(f"/api/v2/tasks/me/{task['id']}")
        listed = c.get("/api/v2/tasks").json()
        random = c.delete(f"/api/v2/tasks/me/{uuid.uuid4()}")
    assert gone.status_code == 202 and gone.content == b""
    assert again.status_code == 404 and read.status_code == 404
    assert task["id"] not in [t["id"] for t in listed["tasks"]]
    assert random.status_code == 404


# ---------------------------------------------------------------------------- send, logs


def test_a_waiting_task_goes_idle_then_completes_on_send(server: LiveServer) -> None:
    task = create(server, "alice", "hello", agent=QUICKSTART)
    idle = settled(server, "alice", task["id"], "idle")
    assert idle["status"] == "active" and idle["workspace_status"] == "running"
    assert "Which topics" in idle["current_state"]["message"]

    with server.client("alice") as c:
        empty = c.post(f"/api/v2/tasks/me/{task['id']}/send", json={"input": ""})
        sent = c.post(f"/api/v2/tasks/me/{task['name']}/send", json={"input": "apples, pears"})
    assert empty.status_code == 400 and empty.json()["message"] == "Task input is required."
    assert sent.status_code == 204 and sent.content == b""

    done = settled(server, "alice", task["id"], "complete")
    assert done["workspace_build_number"] == 2
    assert "0: apples" in done["current_state"]["message"] and "1: pears" in done["current_state"]["message"]

    with server.client("alice") as c:
        logs = c.get(f"/api/v2/tasks/me/{task['id']}/logs")
    assert logs.status_code == 200
    entries = logs.json()["logs"]
    assert [e["type"] for e in entries] == ["input", "output", "input", "output"]
    assert [e["id"] for e in entries] == [0, 1, 2, 3]
    assert entries[0]["content"] == "hello" and entries[2]["content"] == "apples, pears"
    assert "1: pears" in entries[3]["content"]
    assert "snapshot" not in logs.json()


def test_send_to_a_busy_task_is_not_ready_and_pause_waits_for_the_step(held: Held) -> None:
    server, version, release = held.server, held.version, held.release
    with server.client("admin") as c:
        created = c.post("/api/v2/tasks/me", json={"template_version_id": version, "input": "think hard"})
        assert created.status_code == 201, created.text
        task = created.json()
        working = settled(server, "admin", task["id"], "working")
        assert working["status"] == "active" and working["workspace_status"] == "running"

        busy = c.post(f"/api/v2/tasks/me/{task['id']}/send", json={"input": "more"})
        assert busy.status_code == 502
        assert busy.json() == {"message": "Task app is not ready to accept input.", "detail": "Status: running"}

        paused = c.post(f"/api/v2/tasks/me/{task['id']}/pause")
        assert paused.status_code == 202
        build = paused.json()["workspace_build"]
        assert build["transition"] == "stop" and build["reason"] == "task_manual_pause"
        assert build["status"] == "stopping" and build["build_number"] == 1
        assert build["id"] == working["workspace_build_id"] and build["workspace_id"] == task["workspace_id"]

        release.set()
        stopped = server.wait_for_task("admin", task["id"], until=lambda t: t["workspace_status"] == "stopped")
        assert stopped["workspace_status"] == "stopped" and stopped["status"] == "paused"
        refused = c.post(f"/api/v2/tasks/me/{task['id']}/send", json={"input": "more"})
        assert refused.status_code == 409 and refused.json()["message"] == "Task is paused."

        resumed = c.post(f"/api/v2/tasks/me/{task['id']}/resume")
        assert resumed.status_code == 202
        assert resumed.json()["workspace_build"]["transition"] == "start"
        assert resumed.json()["workspace_build"]["reason"] == "task_resume"
        done = settled(server, "admin", task["id"], "complete")
        assert done["workspace_build_number"] == 1 and done["status"] == "active"
        # One run across the pause: its events go on where they stopped, without a gap or a repeat.
        events = sse_events(c.get(f"/api/v2/tasks/me/{task['id']}/events", params={"follow": "false"}))
    assert [e["id"] for e in events] == [f"1.{n}" for n in range(1, len(events) + 1)]
    assert "".join(json.loads(e["data"])["data"]["content"] for e in events if e["event"] == "message") == (
        "the model answered")
    assert events[-1]["event"] == "workflow_finished"


def test_deleting_a_busy_task_stops_its_run(held: Held) -> None:
    with held.server.client("admin") as c:
        created = c.post("/api/v2/tasks/me", json={"template_version_id": held.version, "input": "abandon this"})
        task = created.json()
        settled(held.server, "admin", task["id"], "working")
        assert c.delete(f"/api/v2/tasks/me/{task['id']}").status_code == 202
        assert c.get(f"/api/v2/tasks/me/{task['id']}").status_code == 404
    # The run was cancelled mid-step: the model's caller hung up instead of waiting for the answer.
    assert held.model.wait_for_disconnect(timeout=20)


# ---------------------------------------------------------------------------- pause, resume, input


def test_pause_resume_and_the_input_of_a_paused_task(sqlite_server: LiveServer) -> None:
    task = create(sqlite_server, "alice", "first words")
    settled(sqlite_server, "alice", task["id"], "complete")
    path = f"/api/v2/tasks/me/{task['id']}"
    with sqlite_server.client("alice") as c:
        active_edit = c.patch(f"{path}/input", json={"input": "other words"})
        assert active_edit.status_code == 409
        assert active_edit.json() == {"message": "Unable to update task input, task must be paused.",
                                      "detail": "Please stop the task's workspace before updating the input."}
        assert c.post(f"{path}/resume").status_code == 409

        paused = c.post(f"{path}/pause")
        assert paused.status_code == 202
        build = paused.json()["workspace_build"]
        assert build["status"] == "stopped" and build["job"]["status"] == "succeeded"
        assert build["workspace_owner_name"] == "alice" and build["template_version_id"] == version_of(sqlite_server)
        assert c.get(path).json()["status"] == "paused"
        assert c.get(path).json()["workspace_status"] == "stopped"
        assert c.post(f"{path}/pause").status_code == 409

        logs = c.get(f"{path}/logs").json()
        assert logs["snapshot"] is True and [e["type"] for e in logs["logs"]] == ["input", "output"]

        assert c.patch(f"{path}/input", json={"input": "  "}).json()["message"] == "Task input is required."
        edited = c.patch(f"{path}/input", json={"input": "other words"})
        assert edited.status_code == 204 and edited.content == b""
        assert c.get(path).json()["initial_prompt"] == "other words"

        resumed = c.post(f"{path}/resume")
        assert resumed.status_code == 202 and resumed.json()["workspace_build"]["status"] == "running"
        assert c.get(path).json()["status"] == "active"
    with sqlite_server.client("bob") as c:
        assert c.patch(f"{path}/input", json={"input": "x"}).status_code == 404
        assert c.post(f"/api/v2/tasks/alice/{task['id']}/pause").status_code == 404
        assert c.post(f"/api/v2/tasks/me/{uuid.uuid4()}/send", json={"input": "x"}).status_code == 404


# ---------------------------------------------------------------------------- the events stream


def test_events_stream_every_run_with_resumable_ids(server: LiveServer) -> None:
    task = create(server, "alice", "hello", agent=QUICKSTART)
    settled(server, "alice", task["id"], "idle")
    url = f"/api/v2/tasks/me/{task['id']}/events"
    with server.client("alice") as c:
        with c.stream("GET", url) as live:
            assert live.status_code == 200
            assert live.headers["content-type"].startswith("text/event-stream")
            lines = live.iter_lines()
            # A run that waits for input ends with the form it shows.
            first = sse_events(lines, stop=lambda e: e.get("event") == "user_inputs")
            assert {event_key(e)[0] for e in first} == {1}
            sent = c.post(f"/api/v2/tasks/me/{task['id']}/send", json={"input": "apples, pears"})
            assert sent.status_code == 204
            second = sse_events(lines, stop=lambda e: e.get("event") == "workflow_finished")
        assert {event_key(e)[0] for e in second} == {2}

        whole = first + second
        keys = [event_key(e) for e in whole]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        for run in (1, 2):
            seqs = [s for r, s in keys if r == run]
            assert seqs == list(range(1, len(seqs) + 1))
        assert whole[0]["event"] == "workflow_started"
        assert any(e["event"] == "message" and "1: pears" in e["data"] for e in second)

        stored = c.get(url, params={"follow": "false"})
        assert stored.status_code == 200
        assert [(e["id"], e["event"], json.loads(e["data"])) for e in sse_events(stored)] == [
            (e["id"], e["event"], json.loads(e["data"])) for e in whole]

        middle = whole[len(first) - 2]["id"]
        with c.stream("GET", url, params={"follow": "false"}, headers={"Last-Event-ID": middle}) as resumed:
            rest = sse_events(resumed)
        assert [e["id"] for e in rest] == [e["id"] for e in whole[len(first) - 1:]]
        after = c.get(url, params={"follow": "false", "after": whole[-1]["id"]})
        assert sse_events(after) == []

        bad = c.get(url, headers={"Last-Event-ID": "nonsense"})
        assert bad.status_code == 400 and bad.json()["message"] == 'Invalid event id "nonsense".'
    with server.client("bob") as c:
        assert c.get(url).status_code == 404

    # The client that went away stopped nothing: the task is still there and complete.
    assert settled(server, "alice", task["id"], "complete")["workspace_build_number"] == 2


def test_a_stream_ends_when_its_task_is_deleted(sqlite_server: LiveServer) -> None:
    task = create(sqlite_server, "alice", "hello", agent=QUICKSTART)
    settled(sqlite_server, "alice", task["id"], "idle")
    with sqlite_server.client("alice") as c, c.stream("GET", f"/api/v2/tasks/me/{task['id']}/events") as live:
        lines = live.iter_lines()
        first = sse_events(lines, stop=lambda e: e.get("event") == "user_inputs")
        assert c.delete(f"/api/v2/tasks/me/{task['id']}").status_code == 202
        rest = sse_events(lines)
    assert first and rest == []
