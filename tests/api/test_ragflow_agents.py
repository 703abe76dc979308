"""ragflow's agent routes over HTTP: CRUD and its refusals, versions, tags, templates, prompts, reset, logs,
rerun, the database check, and what every /api/v1 route answers without a valid token."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from taskcanvas.api.ragflow.agents import tool_traces
from tests.store.databases import POSTGRES_URL
from tests.support.server import LiveServer, start_server

HEX = re.compile(r"[0-9a-f]{32}")
MINIMAL_DSL = {
    "components": {
        "begin": {"obj": {"component_name": "Begin", "params": {}}, "downstream": ["message"], "upstream": []},
        "message": {"obj": {"component_name": "Message", "params": {"content": ["{sys.query}"]}},
                    "downstream": [], "upstream": ["begin"]},
    },
    "history": [], "retrieval": [], "path": [],
    "globals": {"sys.query": "", "sys.user_id": "", "sys.conversation_turns": 0, "sys.files": []},
    "variables": {},
}
NO_ACCESS = {"code": 103, "message": "Make sure you have permission to access the agent.", "data": False}


def api(server: LiveServer, user: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"} if user else {}
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30, headers=headers)


def create(c: httpx.Client, title: str, dsl: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    answer = c.post("/agents", json={"title": title, "dsl": dsl or MINIMAL_DSL, **extra}).json()
    assert answer["code"] == 0, answer
    return dict(answer["data"])


# ---------------------------------------------------------------------------- auth and routing
def test_unknown_routes_answer_json_404_and_known_ones_want_a_token(sqlite_server: LiveServer) -> None:
    with api(sqlite_server, None) as c:
        unknown = c.get("/agents/x/y/z/nothing")
        bare = c.get("/agents/prompts")
    with httpx.Client(base_url=f"{sqlite_server.url}/api/v1", headers={"Authorization": "Bearer tc_bad"}) as c:
        bad = c.get("/agents")
    with httpx.Client(base_url=f"{sqlite_server.url}/api/v1",
                      headers={"Authorization": sqlite_server.tokens["alice"]}) as c:
        raw_token = c.get("/agents")
    assert unknown.status_code == 404
    assert unknown.json() == {"code": 404, "message": "Not Found: /api/v1/agents/x/y/z/nothing", "data": None,
                              "error": "Not Found"}
    assert bare.status_code == 401 and bare.json()["code"] == 401
    assert bad.status_code == 401 and bad.json()["code"] == 401
    assert raw_token.status_code == 200 and raw_token.json()["code"] == 0


# ---------------------------------------------------------------------------- CRUD
def test_create_get_update_delete(server: LiveServer) -> None:
    with api(server, "alice") as c:
        created = create(c, "  Restful agent ", description="does things")
        duplicate = c.post("/agents", json={"title": "Restful agent", "dsl": MINIMAL_DSL}).json()
        got = c.get(f"/agents/{created['id']}").json()
        updated = c.put(f"/agents/{created['id']}", json={"title": "Renamed", "dsl": {
            **MINIMAL_DSL, "globals": {**MINIMAL_DSL["globals"], "sys.user_id": "x"}}}).json()
        published = c.put(f"/agents/{created['id']}", json={"release": True}).json()
        after = c.get(f"/agents/{created['id']}").json()["data"]
        versions = c.get(f"/agents/{created['id']}/versions").json()
        deleted = c.delete(f"/agents/{created['id']}").json()
        gone = c.get(f"/agents/{created['id']}").json()
    assert HEX.fullmatch(created["id"]) and created["title"] == "Restful agent"
    assert created["dsl"] == MINIMAL_DSL and created["description"] == "does things"
    assert created["canvas_category"] == "agent_canvas" and created["permission"] == "me"
    assert created["user_id"] == server.user_ids["alice"].replace("-", "") and created["nickname"] == "alice"
    assert duplicate == {"code": 102, "message": "Restful agent already exists."}
    assert got["code"] == 0 and got["message"] == "success" and got["data"]["last_publish_time"] is None
    assert updated["code"] == 0 and set(updated["data"]) == {"update_time"}
    assert published["code"] == 0
    assert after["title"] == "Renamed" and after["dsl"]["globals"]["sys.user_id"] == "x"
    assert isinstance(after["last_publish_time"], int)
    assert [v["release"] for v in versions["data"]] == [True, False]
    assert all("dsl" not in v and v["user_canvas_id"] == created["id"] for v in versions["data"])
    assert deleted == {"code": 0, "message": "success", "data": True}
    assert gone == {"code": 102, "message": "canvas not found."}


def test_titles_are_unique_in_any_letter_case(server: LiveServer) -> None:
    with api(server, "alice") as c:
        create(c, "Restful agent")
        duplicate = c.post("/agents", json={"title": "restful AGENT", "dsl": MINIMAL_DSL}).json()
    assert duplicate == {"code": 102, "message": "restful AGENT already exists."}


def test_create_refuses_what_ragflow_refuses(sqlite_server: LiveServer) -> None:
    with api(sqlite_server, "alice") as c:
        no_dsl = c.post("/agents", json={"title": "t"}).json()
        no_title = c.post("/agents", json={"dsl": MINIMAL_DSL}).json()
        not_json = c.post("/agents", json={"title": "t", "dsl": "{not json"}).json()
        broken = c.post("/agents", json={"title": "t", "dsl": {"components": {"begin": {
            "obj": {"component_name": "NoSuchThing", "params": {}}, "downstream": [], "upstream": []}}}}).json()
    assert no_dsl == {"code": 101, "message": "No DSL data in request.", "data": False}
    assert no_title == {"code": 101, "message": "No title in request.", "data": False}
    assert not_json["code"] == 101 and not_json["message"].startswith("DSL must be a JSON object.")
    assert broken["code"] == 101 and "NoSuchThing" in broken["message"]


def test_other_members_may_read_but_not_change_an_agent(server: LiveServer) -> None:
    with api(server, "alice") as c:
        created = create(c, "Alice's")
    with api(server, "bob") as c:
        read = c.get(f"/agents/{created['id']}").json()
        update = c.put(f"/agents/{created['id']}", json={"title": "Bob's now"}).json()
        delete = c.delete(f"/agents/{created['id']}").json()
        tags = c.put(f"/agents/{created['id']}/tags", json={"tags": "x"}).json()
    with api(server, "alice") as c:
        invalid_update = c.put("/agents/invalid-agent-id", json={"title": "x", "dsl": MINIMAL_DSL}).json()
        invalid_delete = c.delete("/agents/invalid-agent-id").json()
    assert read["code"] == 0
    assert update == NO_ACCESS and invalid_update == NO_ACCESS
    owner_only = {"code": 103, "message": "Only the owner of the agent is authorized for this operation.",
                  "data": False}
    assert delete == owner_only and invalid_delete == owner_only
    assert tags == {"code": 103, "message": "Agent not found or no permission.", "data": False}


def test_the_list_is_newest_first_and_pages_like_ragflow(sqlite_server: LiveServer) -> None:
    with api(sqlite_server, "alice") as c:
        for title in ("alpha", "beta", "gamma"):
            create(c, title)
        listed = c.get("/agents", params={"title": "ignored", "id": "ignored"}).json()
        oldest = c.get("/agents", params={"desc": "false", "orderby": "create_time"}).json()
        page = c.get("/agents", params={"page": 2, "page_size": 2}).json()
        found = c.get("/agents", params={"keywords": "ETA"}).json()
        too_big = c.get("/agents", params={"page_size": 101}).json()
        filtered = c.get("/agents", params={"type": "filter"}).json()
    titles = [a["title"] for a in listed["data"]["canvas"]]
    assert listed["code"] == 0 and listed["data"]["total"] == 5
    assert titles[:3] == ["gamma", "beta", "alpha"]
    assert [a["title"] for a in oldest["data"]["canvas"]][-3:] == ["alpha", "beta", "gamma"]
    assert page["data"]["total"] == 5 and len(page["data"]["canvas"]) == 2
    assert "dsl" not in listed["data"]["canvas"][0]
    assert [a["title"] for a in found["data"]["canvas"]] == ["beta"]
    assert too_big["code"] == 100 and "page_size must be less than or equal to 100" in too_big["message"]
    assert filtered["data"]["total"] == 5
    assert {o["label"]: o["count"] for o in filtered["data"]["filter"]["owner"]} == {"alice": 3, "admin": 2}


def test_versions_tags_and_reset(sqlite_server: LiveServer) -> None:
    stateful = {**MINIMAL_DSL, "path": ["begin"], "history": [["user", "hi"]],
                "globals": {**MINIMAL_DSL["globals"], "sys.query": "hi", "sys.conversation_turns": 3}}
    with api(sqlite_server, "alice") as c:
        agent = create(c, "With state", stateful)
        version = c.get(f"/agents/{agent['id']}/versions").json()["data"][0]
        one = c.get(f"/agents/{agent['id']}/versions/{version['id']}").json()
        wrong = c.get(f"/agents/{agent['id']}/versions/{'0' * 32}").json()
        tagged = c.put(f"/agents/{agent['id']}/tags", json={"tags": ["red", "blue"]}).json()
        other = create(c, "Other")
        c.put(f"/agents/{other['id']}/tags", json={"tags": "red"})
        counts = c.get("/agents/tags").json()
        reset = c.post(f"/agents/{agent['id']}/reset").json()
        after = c.get(f"/agents/{agent['id']}").json()["data"]
    assert one["data"]["dsl"] == stateful and one["data"]["id"] == version["id"]
    assert wrong == {"code": 102, "message": "Version not found."}
    assert tagged == {"code": 0, "message": "success", "data": True}
    assert counts["data"] == [{"tag": "red", "count": 2}, {"tag": "blue", "count": 1}]
    assert reset["data"]["path"] == [] and reset["data"]["history"] == []
    assert reset["data"]["globals"]["sys.query"] == "" and reset["data"]["globals"]["sys.conversation_turns"] == 0
    assert after["dsl"] == reset["data"]


# ---------------------------------------------------------------------------- support routes
def test_templates_prompts_logs_and_rerun(sqlite_server: LiveServer) -> None:
    echo = str(sqlite_server.agents["Echo"]["id"]).replace("-", "")
    with api(sqlite_server, "alice") as c:
        templates = c.get("/agents/templates").json()
        prompts = c.get("/agents/prompts").json()
        missing = c.get(f"/agents/{echo}/logs/missing_message").json()
        run = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "hi"}).json()["data"]
        no_tools = c.get(f"/agents/{echo}/logs/{run['message_id']}").json()
        rerun_missing = c.post("/agents/rerun", json={"id": "flow-1"}).json()
        rerun = c.post("/agents/rerun", json={"id": "flow-1", "dsl": {}, "component_id": "x"}).json()
    assert templates["code"] == 0
    assert sorted(t["title"]["en"] for t in templates["data"]) == ["Echo", "Quickstart: topics"]
    assert all(t["dsl"]["components"]["begin"] for t in templates["data"])
    assert set(prompts["data"]) == {"task_analysis", "plan_generation", "reflection", "citation_guidelines"}
    assert "[ID:" in prompts["data"]["citation_guidelines"]
    assert missing == {"code": 0, "message": "success", "data": {}}
    assert no_tools == {"code": 0, "message": "success", "data": {}}
    assert rerun_missing == {"code": 101, "message": "required argument are missing: dsl,component_id; ",
                             "data": None}
    assert rerun == {"code": 102, "message": "Document not found."}


def test_tool_traces_come_from_the_tool_nodes_that_finished() -> None:
    events = [
        {"event": "node_finished", "data": {"component_id": "begin", "component_type": "Begin", "outputs": {}}},
        {"event": "node_finished", "data": {"component_id": "ExeSQL:Q", "component_type": "ExeSQL",
                                            "inputs": {"sql": "select 1"}, "elapsed_time": 0.5,
                                            "outputs": {"formalized_content": "| 1 |", "_created_time": 3.0}}},
        {"event": "message", "data": {"content": "x"}},
    ]
    assert tool_traces(events) == [{"component_id": "ExeSQL:Q", "trace": [{
        "path": ["ExeSQL:Q"], "tool_name": "execute_sql", "arguments": {"sql": "select 1"},
        "result": {"formalized_content": "| 1 |"}, "elapsed_time": 0.5}]}]
    assert tool_traces(events[:1]) == []


# ---------------------------------------------------------------------------- the database check
def test_db_connection_checks_fields_and_the_ssrf_policy(sqlite_server: LiveServer) -> None:
    fields = {"db_type": "postgres", "database": "x", "username": "u", "host": "127.0.0.1", "port": 5432,
              "password": "p"}
    with api(sqlite_server, "alice") as c:
        missing = c.post("/agents/test_db_connection", json={"db_type": "mysql"}).json()
        loopback = c.post("/agents/test_db_connection", json=fields).json()
        unsupported = c.post("/agents/test_db_connection", json={**fields, "db_type": "trino"}).json()
    assert missing == {"code": 101, "message": "required argument are missing: database,username,host,port,password; ",
                       "data": None}
    assert loopback["code"] == 102 and "127.0.0.1" in loopback["message"] and "not allowed" in loopback["message"]
    assert unsupported == {"code": 100, "message": "Unsupported database type.", "data": None}


@pytest.fixture
def private_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    yield from start_server(tmp_path, "sqlite", request, extra_env={"TASKCANVAS_HTTP_ALLOW_PRIVATE": "true"})


def test_db_connection_really_connects(private_server: LiveServer) -> None:
    url = make_url(POSTGRES_URL)
    fields = {"db_type": "postgres", "database": url.database or "postgres", "username": url.username or "postgres",
              "host": url.host or "127.0.0.1", "port": url.port or 5432, "password": url.password or ""}
    with api(private_server, "alice") as c:
        answer = c.post("/agents/test_db_connection", json=fields).json()
        refused = c.post("/agents/test_db_connection", json={**fields, "database": "no_such_database_here"}).json()
    if answer["code"] != 0 and os.environ.get("CI") != "true":
        pytest.skip(f"PostgreSQL is not reachable at {url.host}:{url.port}: {answer['message']}")
    assert answer == {"code": 0, "message": "success", "data": "Database Connection Successful!"}
    assert refused["code"] == 100 and "no_such_database_here" in refused["message"]
