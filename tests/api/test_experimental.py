"""The seed era's Tasks API on /api/experimental (issue 8), and the current era's routes kept there."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.api.test_coder_tasks import NAME_RE, NOT_FOUND, QUICKSTART, settled, sse_events, version_of
from tests.support.server import LiveServer

SEED_FIELDS = {
    "id", "organization_id", "owner_id", "owner_name", "name", "template_id", "template_name",
    "template_display_name", "template_icon", "workspace_id", "workspace_agent_id", "workspace_agent_lifecycle",
    "workspace_agent_health", "created_at", "updated_at", "initial_prompt", "status", "current_state",
}
WORKSPACE_STATUSES = {"pending", "starting", "running", "stopping", "stopped", "failed", "canceling", "canceled",
                      "deleting", "deleted"}


def seed_create(c: httpx.Client, server: LiveServer, body: dict[str, Any], *, agent: str = "Echo",
                owner: str = "me") -> httpx.Response:
    return c.post(f"/api/experimental/tasks/{owner}", json={"template_version_id": version_of(server, agent), **body})


def test_a_seed_task_runs_to_complete_and_reads_on_both_faces(server: LiveServer) -> None:
    with server.client("alice") as c:
        created = seed_create(c, server, {"prompt": "hello seed"})
    assert created.status_code == 201, created.text
    task = created.json()
    assert set(task) == SEED_FIELDS
    assert task["initial_prompt"] == "hello seed" and task["owner_name"] == "alice"
    assert task["status"] in WORKSPACE_STATUSES and task["workspace_agent_health"] is None
    assert NAME_RE.fullmatch(task["name"]) and task["name"].startswith("task-") and uuid.UUID(task["workspace_id"])

    done = settled(server, "alice", task["id"], "complete")
    assert done["current_state"]["message"] == "You said: hello seed" and done["name"] == task["name"]
    with server.client("alice") as c:
        seed = c.get(f"/api/experimental/tasks/me/{task['id']}").json()
    assert seed["status"] == "running"
    assert seed["current_state"] == done["current_state"] and seed["workspace_id"] == done["workspace_id"]


def test_create_takes_prompt_or_input_and_refuses_as_the_seed_did(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("alice") as c:
        by_input = seed_create(c, sqlite_server, {"input": "from input"})
        named = seed_create(c, sqlite_server, {"prompt": "named", "name": "my-seed-task"})
        bad_name = seed_create(c, sqlite_server, {"prompt": "x", "name": "not valid!"})
        random_version = c.post("/api/experimental/tasks/me", json={"template_version_id": str(uuid.uuid4()),
                                                                    "prompt": "x"})
        for_bob = seed_create(c, sqlite_server, {"prompt": "x"}, owner="bob")
    assert by_input.status_code == 201 and by_input.json()["initial_prompt"] == "from input"
    assert named.status_code == 201 and named.json()["name"] == "my-seed-task"
    assert bad_name.status_code == 400
    assert bad_name.json()["message"] == "Unable to create a Task with the provided name."
    assert bad_name.json()["detail"] == "must be alphanumeric with hyphens"
    assert random_version.status_code == 404 and random_version.json() == {"message": NOT_FOUND}
    assert for_bob.status_code == 404

    with sqlite_server.client("admin") as c:
        creates = [e for e in c.get("/api/v2/audit", params={"q": "action:create resource_type:task"}).json()[
            "audit_logs"]]
    assert {e["resource_id"] for e in creates} == {by_input.json()["id"], named.json()["id"]}


def test_prompts_of_runs_the_caller_may_see(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("alice") as c:
        alices = seed_create(c, sqlite_server, {"prompt": "alice asks"}).json()
    with sqlite_server.client("bob") as c:
        bobs = seed_create(c, sqlite_server, {"prompt": "bob asks"}).json()
    alice_run = settled(sqlite_server, "alice", alices["id"], "complete")["workspace_build_id"]
    bob_run = settled(sqlite_server, "bob", bobs["id"], "complete")["workspace_build_id"]
    unknown = str(uuid.uuid4())
    ids = f"{alice_run}, {bob_run},{unknown}"

    with sqlite_server.client("alice") as c:
        mine = c.get("/api/experimental/aitasks/prompts", params={"build_ids": ids})
        missing = c.get("/api/experimental/aitasks/prompts")
        empty = c.get("/api/experimental/aitasks/prompts", params={"build_ids": ""})
        bad = c.get("/api/experimental/aitasks/prompts", params={"build_ids": f"{alice_run},nope"})
    with sqlite_server.client("admin") as c:
        everything = c.get("/api/experimental/aitasks/prompts", params={"build_ids": ids})

    assert mine.status_code == 200 and mine.json() == {"prompts": {alice_run: "alice asks"}}
    assert everything.json() == {"prompts": {alice_run: "alice asks", bob_run: "bob asks"}}
    assert missing.status_code == 400 and missing.json() == {"message": "build_ids query parameter is required"}
    assert empty.status_code == 400
    assert bad.status_code == 400
    assert bad.json() == {"message": "Invalid build ID format: nope", "detail": "invalid UUID length: 4"}


def test_the_list_speaks_the_workspace_search_syntax(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("alice") as c:
        first = seed_create(c, sqlite_server, {"prompt": "one", "name": "alpha-one"}).json()
        second = seed_create(c, sqlite_server, {"prompt": "two", "name": "beta-two"}).json()
        waiting = seed_create(c, sqlite_server, {"prompt": "hello", "name": "gamma"}, agent=QUICKSTART).json()
    with sqlite_server.client("bob") as c:
        bobs = seed_create(c, sqlite_server, {"prompt": "three", "name": "alpha-bob"}).json()
    for user, task in (("alice", first), ("alice", second), ("bob", bobs)):
        settled(sqlite_server, user, task["id"], "complete")
    settled(sqlite_server, "alice", waiting["id"], "idle")

    def listing(user: str, **params: Any) -> dict[str, Any]:
        with sqlite_server.client(user) as c:
            answer = c.get("/api/experimental/tasks", params=params)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def names(user: str, **params: Any) -> list[str]:
        return [t["name"] for t in listing(user, **params)["tasks"]]

    assert names("alice") == ["gamma", "beta-two", "alpha-one"]
    assert names("alice", q="owner:me") == ["gamma", "beta-two", "alpha-one"]
    assert names("admin", q="alpha") == ["alpha-bob", "alpha-one"]
    assert names("admin", q="owner:alice alpha") == ["alpha-one"]
    assert names("admin", q="bob/alpha") == ["alpha-bob"]
    assert names("admin", q="owner:nobody") == []
    assert names("admin", q="template:quickstart-topics") == ["gamma"]
    assert names("admin", q="template:echo status:running") == ["alpha-bob", "beta-two", "alpha-one"]
    assert names("admin", q="status:stopped") == []
    assert names("admin", q="organization:default has-ai-task:true") == [
        "alpha-bob", "gamma", "beta-two", "alpha-one"]

    page = listing("alice", limit="1", offset="1")
    assert [t["name"] for t in page["tasks"]] == ["beta-two"] and page["count"] == 3
    assert all(set(t) == SEED_FIELDS for t in page["tasks"])

    with sqlite_server.client("alice") as c:
        bad_status = c.get("/api/experimental/tasks", params={"q": "status:idle"})
        bad_key = c.get("/api/experimental/tasks", params={"q": "colour:blue"})
        bad_limit = c.get("/api/experimental/tasks", params={"limit": "-1"})
    assert bad_status.status_code == 400 and bad_status.json()["message"] == "Invalid workspace search query."
    assert bad_status.json()["validations"] == [
        {"field": "status", "detail": 'Query param "status" has invalid value: "idle" is not a valid value'}]
    assert bad_key.status_code == 400 and bad_key.json()["validations"][0]["field"] == "colour"
    assert bad_limit.status_code == 400


def test_get_and_delete_take_a_task_id_and_mask_other_members_tasks(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("alice") as c:
        task = seed_create(c, sqlite_server, {"prompt": "mine"}).json()
        not_uuid = c.get("/api/experimental/tasks/me/not-a-uuid")
        by_name = c.get(f"/api/experimental/tasks/me/{task['name']}")
        unknown = c.get(f"/api/experimental/tasks/me/{uuid.uuid4()}")
        bad_delete = c.delete("/api/experimental/tasks/me/nope")
    assert not_uuid.status_code == 400 and not_uuid.json() == {"message": 'Invalid UUID "not-a-uuid" for task ID.'}
    assert by_name.status_code == 400
    assert unknown.status_code == 404 and unknown.json() == {"message": NOT_FOUND}
    assert bad_delete.status_code == 400

    with sqlite_server.client("bob") as c:
        assert c.get(f"/api/experimental/tasks/alice/{task['id']}").status_code == 404
        assert c.delete(f"/api/experimental/tasks/alice/{task['id']}").status_code == 404
        assert c.get("/api/experimental/tasks").json() == {"tasks": [], "count": 0}

    with sqlite_server.client("alice") as c:
        assert c.get(f"/api/experimental/tasks/me/{task['id']}").status_code == 200
        deleted = c.delete(f"/api/experimental/tasks/me/{task['id']}")
        assert deleted.status_code == 202 and deleted.content == b""
        assert c.get(f"/api/experimental/tasks/me/{task['id']}").status_code == 404
        assert c.get(f"/api/v2/tasks/me/{task['id']}").status_code == 404
        assert c.get("/api/experimental/tasks").json()["count"] == 0
        assert c.delete(f"/api/experimental/tasks/me/{task['id']}").status_code == 404


def test_the_current_eras_task_routes_stay_under_the_prefix(sqlite_server: LiveServer) -> None:
    with sqlite_server.client("alice") as c:
        task = seed_create(c, sqlite_server, {"prompt": "hello"}, agent=QUICKSTART).json()
        settled(sqlite_server, "alice", task["id"], "idle")
        base = f"/api/experimental/tasks/me/{task['id']}"

        assert c.post(f"{base}/send", json={"input": ""}).status_code == 400
        assert c.post(f"{base}/send", json={"input": "apples, pears"}).status_code == 204
        settled(sqlite_server, "alice", task["id"], "complete")
        logs = c.get(f"{base}/logs")
        assert [e["type"] for e in logs.json()["logs"]] == ["input", "output", "input", "output"]

        events = sse_events(c.get(f"{base}/events", params={"follow": "false"}))
        assert events[0]["id"] == "1.1" and events[-1]["event"] == "workflow_finished"
        assert "1: pears" in "".join(json.loads(e["data"])["data"]["content"] for e in events
                                     if e["event"] == "message")

        paused = c.post(f"{base}/pause")
        assert paused.status_code == 202 and paused.json()["workspace_build"]["status"] == "stopped"
        assert c.get(f"/api/experimental/tasks/me/{task['id']}").json()["status"] == "stopped"
        assert c.patch(f"{base}/input", json={"input": "new words"}).status_code == 204
        assert c.post(f"{base}/resume").status_code == 202
        again = c.get(f"/api/experimental/tasks/me/{task['id']}").json()
        assert again["status"] == "running" and again["initial_prompt"] == "new words"
    with sqlite_server.client() as c:
        assert c.get("/api/experimental/tasks").status_code == 401
        assert c.get("/api/experimental/aitasks/prompts", params={"build_ids": str(uuid.uuid4())}).status_code == 401
