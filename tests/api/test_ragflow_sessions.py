"""ragflow's agent sessions over HTTP, on SQLite and PostgreSQL: create, list, get, delete, and who sees what."""

from __future__ import annotations

import re

import httpx

from tests.support.server import LiveServer

HEX = re.compile(r"[0-9a-f]{32}")
PROLOGUE = "Hi! Say anything and I will say it back."
NO_ACCESS = {"code": 103, "message": "Make sure you have permission to access the agent.", "data": False}


def api(server: LiveServer, user: str) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {server.tokens[user]}"})


def agent_id(server: LiveServer, title: str) -> str:
    return str(server.agents[title]["id"]).replace("-", "")


def test_a_new_session_holds_the_prologue(server: LiveServer) -> None:
    echo = agent_id(server, "Echo")
    with api(server, "alice") as c:
        answer = c.post(f"/agents/{echo}/sessions", json={"name": "mine", "user_id": "visitor-7"}).json()
        from_query = c.post(f"/agents/{echo}/sessions?user_id=visitor-8&release=true", json={}).json()
    assert set(answer) == {"code", "data"} and answer["code"] == 0
    session = answer["data"]
    assert HEX.fullmatch(session["id"])
    assert session["agent_id"] == echo and session["name"] == "mine" and session["source"] == "agent"
    assert session["user_id"] == session["exp_user_id"] == "visitor-7"
    assert session["message"] == [{"role": "assistant", "content": PROLOGUE}]
    assert session["dsl"]["components"]["begin"]["obj"]["component_name"] == "Begin"
    assert isinstance(session["create_time"], int) and session["create_time"] > 10**12
    assert from_query["data"]["user_id"] == "visitor-8"


def test_sessions_refuse_missing_agents_and_unpublished_releases(server: LiveServer) -> None:
    dsl = {"components": {"begin": {"obj": {"component_name": "Begin", "params": {}}, "downstream": [],
                                    "upstream": []}}}
    with api(server, "alice") as c:
        draft = c.post("/agents", json={"title": "Draft only", "dsl": dsl}).json()["data"]["id"]
        unreleased = c.post(f"/agents/{draft}/sessions", json={"release": True}).json()
        default_prologue = c.post(f"/agents/{draft}/sessions", json={}).json()["data"]["message"]
        missing = c.post("/agents/not-an-agent/sessions", json={}).json()
        listed = c.get("/agents/0123/sessions").json()
    assert unreleased == {"code": 102, "message": "No available published version"}
    assert default_prologue == [{"role": "assistant",
                                 "content": "Hi! I'm your smart assistant. What can I do for you?"}]
    assert missing == NO_ACCESS and listed == NO_ACCESS


def test_the_list_shows_the_callers_own_sessions_only(server: LiveServer) -> None:
    echo = agent_id(server, "Echo")
    with api(server, "alice") as c:
        mine = [c.post(f"/agents/{echo}/sessions", json={"name": f"s{i}", "user_id": f"u{i % 2}"}).json()["data"]
                for i in range(3)]
    with api(server, "bob") as c:
        c.post(f"/agents/{echo}/sessions", json={"name": "bob's"})
        bobs = c.get(f"/agents/{echo}/sessions").json()
    with api(server, "alice") as c:
        listed = c.get(f"/agents/{echo}/sessions").json()
        oldest_first = c.get(f"/agents/{echo}/sessions", params={"orderby": "create_time", "desc": "false"}).json()
        page = c.get(f"/agents/{echo}/sessions", params={"page": 2, "page_size": 2}).json()
        by_id = c.get(f"/agents/{echo}/sessions", params={"id": mine[1]["id"]}).json()
        by_user = c.get(f"/agents/{echo}/sessions", params={"user_id": "u0"}).json()
        by_words = c.get(f"/agents/{echo}/sessions", params={"keywords": "S2"}).json()
        no_dsl = c.get(f"/agents/{echo}/sessions", params={"dsl": "false"}).json()
        too_big = c.get(f"/agents/{echo}/sessions", params={"page_size": 101}).json()
    assert set(listed) == {"code", "message", "data", "total"}
    assert listed["total"] == 3 and [s["name"] for s in listed["data"]] == ["s2", "s1", "s0"]
    assert all(s["agent_id"] == echo for s in listed["data"])
    assert [s["name"] for s in oldest_first["data"]] == ["s0", "s1", "s2"]
    assert page["total"] == 3 and [s["name"] for s in page["data"]] == ["s0"]
    assert [s["id"] for s in by_id["data"]] == [mine[1]["id"]]
    assert sorted(s["name"] for s in by_user["data"]) == ["s0", "s2"]
    assert [s["name"] for s in by_words["data"]] == ["s2"]
    assert "dsl" not in no_dsl["data"][0]
    assert [s["name"] for s in bobs["data"]] == ["bob's"]
    assert too_big["code"] == 100 and "page_size must be less than or equal to 100" in too_big["message"]


def test_one_session_reads_as_ragflows_row(server: LiveServer) -> None:
    echo, topics = agent_id(server, "Echo"), agent_id(server, "Quickstart: topics")
    with api(server, "alice") as c:
        session = c.post(f"/agents/{echo}/sessions", json={}).json()["data"]["id"]
        dashed = f"{session[:8]}-{session[8:12]}-{session[12:16]}-{session[16:20]}-{session[20:]}"
        row = c.get(f"/agents/{echo}/sessions/{dashed}").json()
        other_agent = c.get(f"/agents/{topics}/sessions/{session}").json()
    with api(server, "bob") as c:
        others = c.get(f"/agents/{echo}/sessions/{session}").json()
    assert row["code"] == 0 and row["message"] == "success"
    assert row["data"]["id"] == session and row["data"]["dialog_id"] == echo and row["data"]["agent_id"] == echo
    assert row["data"]["reference"] == []
    assert other_agent == {"code": 102, "message": "Session not found!"}
    assert others == {"code": 102, "message": "Session not found!"}


def test_deleting_sessions_reports_each_id_as_ragflow_does(server: LiveServer) -> None:
    echo = agent_id(server, "Echo")
    with api(server, "alice") as c:
        ids = [c.post(f"/agents/{echo}/sessions", json={}).json()["data"]["id"] for _ in range(4)]
    with api(server, "bob") as c:
        bobs = c.post(f"/agents/{echo}/sessions", json={}).json()["data"]["id"]
        not_his = c.delete(f"/agents/{echo}/sessions/{ids[0]}").json()
    with api(server, "alice") as c:
        one = c.delete(f"/agents/{echo}/sessions/{ids[0]}").json()
        again = c.delete(f"/agents/{echo}/sessions/{ids[0]}").json()
        nothing = c.request("DELETE", f"/agents/{echo}/sessions").json()
        partial = c.request("DELETE", f"/agents/{echo}/sessions", json={"ids": [ids[1], "missing", bobs]}).json()
        failed = c.request("DELETE", f"/agents/{echo}/sessions", json={"ids": ["missing"]}).json()
        duplicated = c.request("DELETE", f"/agents/{echo}/sessions", json={"ids": [ids[2], ids[2]]}).json()
        everything = c.request("DELETE", f"/agents/{echo}/sessions", json={"ids": None, "delete_all": True}).json()
        left = c.get(f"/agents/{echo}/sessions").json()
    with api(server, "bob") as c:
        bob_left = c.get(f"/agents/{echo}/sessions").json()
    assert not_his == {"code": 102, "message": "Session not found!"}
    assert one == {"code": 0, "message": "success", "data": True}
    assert again == {"code": 102, "message": "Session not found!"}
    assert nothing == {"code": 0}
    assert partial["code"] == 0 and partial["data"] == {
        "success_count": 1, "errors": ["The agent doesn't own the session missing",
                                       f"The agent doesn't own the session {bobs}"]}
    assert partial["message"] == "Partially deleted 1 sessions with 2 errors"
    assert failed == {"code": 102, "message": "The agent doesn't own the session missing"}
    assert duplicated["data"] == {"success_count": 1, "errors": [f"Duplicate session ids: {ids[2]}"]}
    assert everything == {"code": 0}
    assert left["total"] == 0
    assert [s["id"] for s in bob_left["data"]] == [bobs]


def test_an_auditor_reads_agents_but_starts_no_session(server: LiveServer) -> None:
    echo = agent_id(server, "Echo")
    with api(server, "audrey") as c:
        made = c.post(f"/agents/{echo}/sessions", json={}).json()
        run = c.post("/agents/chat/completions", json={"agent_id": echo, "query": "hi"}).json()
    assert made == NO_ACCESS and run == NO_ACCESS
