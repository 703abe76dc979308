"""Every route x every role, over HTTP: who may do what, and what the others are told.

The table below has one row per operation of ``/openapi.json`` (a route added without a row
fails the first test). Resources belong to alice, a member; bob is another member, audrey an
auditor, admin the owner, and ``anon`` sends no token. Each answer is classed the way a client
would read it:

- ``ok``     passed authorization (2xx, or a refusal about the resource's state: 400/409/502);
- ``hidden`` coder 404 / ragflow code 102 — the resource is not even admitted to exist;
- ``denied`` coder 403 / ragflow code 103 (or 109 for a login);
- ``unauth`` HTTP 401.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.support.server import PASSWORD, LiveServer

ROLES = ("anon", "bob", "audrey", "alice", "admin")
ECHO_DSL = {"components": {
    "begin": {"obj": {"component_name": "Begin", "params": {}}, "downstream": ["Message:Echo"], "upstream": []},
    "Message:Echo": {"obj": {"component_name": "Message", "params": {"content": ["You said: {sys.query}"]}},
                     "downstream": [], "upstream": ["begin"]}},
    "history": [], "path": [], "retrieval": [], "globals": {"sys.query": ""}}


@dataclass
class Things:
    """What alice owns, made fresh when a row changes or removes it."""

    task_id: str = ""
    task_name: str = ""
    run_id: str = ""
    agent_id: str = ""
    version_id: str = ""
    session_id: str = ""
    message_id: str = ""
    token_name: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _make(server: LiveServer, n: int) -> Things:
    with server.client("alice") as c:
        task = c.post("/api/v2/tasks/me", json={"template_version_id": server.agents["Echo"]["version_id"],
                                               "input": f"hello {n}", "name": f"authz-{n}"}).json()
        v1 = {"Authorization": f"Bearer {server.tokens['alice']}"}
        agent = c.post("/api/v1/agents", headers=v1, json={"title": f"authz agent {n}", "dsl": ECHO_DSL}).json()
        agent_id = agent["data"]["id"]
        versions = c.get(f"/api/v1/agents/{agent_id}/versions", headers=v1).json()["data"]
        session = c.post(f"/api/v1/agents/{agent_id}/sessions", headers=v1, json={"name": "s"}).json()["data"]
        answer = c.post("/api/v1/agents/chat/completions", headers=v1,
                        json={"agent_id": agent_id, "session_id": session["id"], "query": "hi"}).json()
        token = c.post("/api/v2/users/me/keys/tokens", json={"token_name": f"authz-{n}"}).json()
    done = server.wait_for_task("alice", task["id"], until=lambda t: (t.get("current_state") or {}).get("state")
                                == "complete")
    return Things(task_id=task["id"], task_name=task["name"], run_id=done["workspace_build_id"], agent_id=agent_id,
                  version_id=versions[0]["id"], session_id=session["id"],
                  message_id=answer["data"].get("message_id", "0" * 32), token_name=f"authz-{n}",
                  extra={"token": token.get("key", "")})


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    """The openapi path; ``{...}`` filled from :class:`Things` by :func:`_url`."""
    expect: dict[str, str]
    body: Callable[[Things], Any] | None = None
    fresh: bool = False
    """The request changes or removes what it acts on: each role gets things of its own."""
    query: str = ""


def _all(role_ok: str = "ok", **overrides: str) -> dict[str, str]:
    """Everyone signed in passes; ``anon`` is unauth unless overridden."""
    return {"anon": "unauth", "bob": role_ok, "audrey": role_ok, "alice": role_ok, "admin": role_ok, **overrides}


PUBLIC = {role: "ok" for role in ROLES}
OWN_READ = _all(bob="hidden")                       # alice's task/session: admin and the auditor read it
OWN_WRITE = _all(bob="hidden", audrey="hidden")     # acting on alice's task (no 403 for these in coder)
OWN_LIFECYCLE = _all(bob="hidden", audrey="denied")  # coder answers 403 once the caller can see it
AUDIT = _all("denied", admin="ok", audrey="ok")
AGENT_WRITE = _all(bob="denied", audrey="denied")   # ragflow: 103 "Make sure you have permission ..."
AGENT_SESSION = _all(bob="hidden", audrey="hidden")

ROWS = [
    Row("GET", "/healthz", PUBLIC),
    Row("GET", "/metrics", PUBLIC),
    Row("GET", "/api/v2/buildinfo", PUBLIC),
    Row("POST", "/api/v2/users/login", PUBLIC, body=lambda t: {"email": "alice", "password": PASSWORD}),
    Row("POST", "/api/v2/users/logout", _all(), fresh=True),
    Row("GET", "/api/v2/users/{user}", _all(bob="hidden")),
    Row("GET", "/api/v2/users/{user}/keys/tokens", _all(bob="hidden", audrey="hidden")),
    Row("POST", "/api/v2/users/{user}/keys/tokens", _all(bob="hidden", audrey="hidden"),
        body=lambda t: {"token_name": f"new-{t.token_name}"}, fresh=True),
    Row("DELETE", "/api/v2/users/{user}/keys/tokens/{name}", _all(bob="hidden", audrey="hidden"), fresh=True),
    Row("DELETE", "/api/v2/users/{user}/keys/{keyid}", _all(bob="hidden", audrey="hidden"), fresh=True),
    Row("GET", "/api/v2/audit", AUDIT),
    Row("GET", "/api/v2/tasks", _all()),
    Row("POST", "/api/v2/tasks/{user}", _all(bob="hidden", audrey="denied"),
        body=lambda t: {"template_version_id": t.extra["echo_version"], "input": "hi"}),
    Row("GET", "/api/v2/tasks/{user}/{task}", OWN_READ),
    Row("DELETE", "/api/v2/tasks/{user}/{task}", OWN_LIFECYCLE, fresh=True),
    Row("PATCH", "/api/v2/tasks/{user}/{task}/input", OWN_WRITE, body=lambda t: {"input": "new"}),
    Row("POST", "/api/v2/tasks/{user}/{task}/send", OWN_WRITE, body=lambda t: {"input": "more"}, fresh=True),
    Row("GET", "/api/v2/tasks/{user}/{task}/logs", OWN_READ),
    Row("POST", "/api/v2/tasks/{user}/{task}/pause", OWN_LIFECYCLE, fresh=True),
    Row("POST", "/api/v2/tasks/{user}/{task}/resume", OWN_LIFECYCLE, fresh=True),
    Row("GET", "/api/v2/tasks/{user}/{task}/events", OWN_READ, query="follow=false"),
    Row("GET", "/api/v2/templates", _all()),
    Row("GET", "/api/v2/templates/{template}", _all()),
    Row("GET", "/api/v2/templates/{template}/versions", _all()),
    Row("GET", "/api/v2/templateversions/{templateversion}", _all()),
    Row("GET", "/api/v2/templateversions/{templateversion}/presets", _all()),
    Row("GET", "/api/experimental/aitasks/prompts", _all(), query="build_ids={run}"),
    Row("POST", "/api/experimental/tasks/{user}", _all(bob="hidden", audrey="denied"),
        body=lambda t: {"template_version_id": t.extra["echo_version"], "prompt": "hi"}),
    Row("GET", "/api/experimental/tasks", _all()),
    Row("GET", "/api/experimental/tasks/{user}/{id}", OWN_READ),
    Row("DELETE", "/api/experimental/tasks/{user}/{id}", OWN_LIFECYCLE, fresh=True),
    Row("PATCH", "/api/experimental/tasks/{user}/{task}/input", OWN_WRITE, body=lambda t: {"input": "new"}),
    Row("POST", "/api/experimental/tasks/{user}/{task}/send", OWN_WRITE, body=lambda t: {"input": "more"},
        fresh=True),
    Row("GET", "/api/experimental/tasks/{user}/{task}/logs", OWN_READ),
    Row("POST", "/api/experimental/tasks/{user}/{task}/pause", OWN_LIFECYCLE, fresh=True),
    Row("POST", "/api/experimental/tasks/{user}/{task}/resume", OWN_LIFECYCLE, fresh=True),
    Row("GET", "/api/experimental/tasks/{user}/{task}/events", OWN_READ, query="follow=false"),
    # ragflow's face: agents are readable by every member of the organization, changed by their owner.
    Row("GET", "/api/v1/agents", _all()),
    Row("POST", "/api/v1/agents", _all(audrey="denied"),
        body=lambda t: {"title": f"new {t.token_name}", "dsl": ECHO_DSL}, fresh=True),
    Row("GET", "/api/v1/agents/{agent_id}", _all()),
    Row("PUT", "/api/v1/agents/{agent_id}", AGENT_WRITE, body=lambda t: {"description": "changed"}),
    Row("DELETE", "/api/v1/agents/{agent_id}", AGENT_WRITE, fresh=True),
    Row("POST", "/api/v1/agents/{agent_id}/reset", AGENT_WRITE),
    Row("GET", "/api/v1/agents/{agent_id}/versions", _all()),
    Row("GET", "/api/v1/agents/{agent_id}/versions/{version_id}", _all()),
    Row("PUT", "/api/v1/agents/{agent_id}/tags", AGENT_WRITE, body=lambda t: {"tags": "a,b"}),
    Row("GET", "/api/v1/agents/tags", _all()),
    Row("GET", "/api/v1/agents/templates", _all()),
    Row("GET", "/api/v1/agents/prompts", _all()),
    # Another member's run: ragflow's answer for a run it does not have, {} (nothing of alice's shown).
    Row("GET", "/api/v1/agents/{agent_id}/logs/{message_id}", _all()),
    # ragflow's dataflow rerun: taskcanvas has no pipeline documents, so every caller gets 102.
    Row("POST", "/api/v1/agents/rerun", _all("hidden"), body=lambda t: {"id": "x", "dsl": {}, "component_id": "c"}),
    # Loopback is refused by the SSRF policy (102) for everyone signed in.
    Row("POST", "/api/v1/agents/test_db_connection", _all("hidden"),
        body=lambda t: {"db_type": "postgres", "database": "x", "username": "u", "host": "127.0.0.1",
                        "port": 1, "password": "p"}),
    Row("GET", "/api/v1/agents/{agent_id}/sessions", _all(audrey="ok")),
    Row("POST", "/api/v1/agents/{agent_id}/sessions", _all(audrey="denied"), body=lambda t: {"name": "x"}),
    Row("DELETE", "/api/v1/agents/{agent_id}/sessions", _all(bob="hidden", audrey="hidden"),
        body=lambda t: {"ids": [t.session_id]}, fresh=True),
    Row("GET", "/api/v1/agents/{agent_id}/sessions/{session_id}", OWN_READ),
    Row("DELETE", "/api/v1/agents/{agent_id}/sessions/{session_id}", AGENT_SESSION, fresh=True),
    Row("POST", "/api/v1/agents/chat/completions", AGENT_SESSION,
        body=lambda t: {"agent_id": t.agent_id, "session_id": t.session_id, "query": "again"}, fresh=True),
    Row("POST", "/api/v1/agents/{agent_id}/completions", AGENT_SESSION,
        body=lambda t: {"session_id": t.session_id, "question": "again"}, fresh=True),
    Row("POST", "/api/v1/agents_openai/{agent_id}/chat/completions", AGENT_SESSION,
        body=lambda t: {"messages": [{"role": "user", "content": "hi"}], "id": t.session_id}, fresh=True),
    # ragflow answers true for any id; another's session is left alone (checked at the end).
    Row("POST", "/api/v1/tasks/{task_id}/cancel", _all()),
    Row("PATCH", "/api/v1/tasks/{task_id}", _all(), body=lambda t: {"action": "stop"}),
    Row("GET", "/api/v1/agents/{agent_id}/webhook/logs", _all(bob="hidden", audrey="hidden")),
    Row("POST", "/api/v1/users", PUBLIC, body=lambda t: {"email": "x@example.com", "password": "pw"}),
    Row("POST", "/api/v1/auth/login", PUBLIC, body=lambda t: {"email": "alice@example.com", "password": PASSWORD}),
    Row("GET", "/api/v1/system/tokens", _all()),
    Row("POST", "/api/v1/system/tokens", _all(), fresh=True),
    # Revokes only the caller's own tokens; alice's survives the others' attempts (checked at the end).
    Row("DELETE", "/api/v1/system/tokens/{token}", _all(), fresh=True),
    Row("GET", "/api/v1/models", _all()),
    Row("GET", "/api/v1/models/default", _all()),
    Row("PATCH", "/api/v1/models/default", _all(), body=lambda t: {"llm_id": "x@OpenAI"}),
]
UNTABLED = {
    # Public by design (ragflow's webhook has its own security settings), tested in test_ragflow_webhooks.py.
    ("*", "/api/v1/agents/{agent_id}/webhook"), ("*", "/api/v1/agents/{agent_id}/webhook/test"),
    # Needs a stored file: the session's reader only, another member 102, nobody 401, tested in
    # test_ragflow_artifacts.py.
    ("*", "/api/v1/documents/artifact/{filename}"),
}


def test_every_route_has_a_row(sqlite_server: LiveServer) -> None:
    with sqlite_server.client() as c:
        paths = c.get("/openapi.json").json()["paths"]
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops
                  if method.upper() != "HEAD" and ("*", path) not in UNTABLED}
    tabled = {(row.method, row.path) for row in ROWS}
    assert documented - tabled == set(), "routes without an authorization row"
    assert tabled - documented == set(), "rows for routes that do not exist"


def _url(row: Row, things: Things, server: LiveServer) -> str:
    values = {"user": "alice", "task": things.task_id, "id": things.task_id, "template": things.extra["agent_uuid"],
              "templateversion": things.extra["version_uuid"], "agent_id": things.agent_id,
              "version_id": things.version_id, "session_id": things.session_id, "message_id": things.message_id,
              "task_id": things.session_id, "name": things.token_name, "keyid": things.token_name,
              "token": things.extra["token"], "run": things.run_id}
    path = row.path.format(**values)
    query = row.query.format(**values)
    return path + (f"?{query}" if query else "")


def _classify(answer: httpx.Response, ragflow: bool) -> str:
    if answer.status_code == 401:
        return "unauth"
    if ragflow and answer.headers.get("content-type", "").startswith("application/json"):
        body = answer.json()
        code = body.get("code") if isinstance(body, dict) else None
        if code == 102:
            return "hidden"
        if code in (103, 109):
            return "denied"
        if code == 401:
            return "unauth"
    if answer.status_code == 404:
        return "hidden"
    if answer.status_code == 403:
        return "denied"
    if answer.status_code < 300 or answer.status_code in (400, 409, 502):
        return "ok"
    return f"http {answer.status_code}"


def _headers(server: LiveServer, role: str, ragflow: bool, things: Things) -> dict[str, str]:
    if role == "anon":
        return {}
    token = server.tokens[role]
    return {"Authorization": f"Bearer {token}"} if ragflow else {"Coder-Session-Token": token}


@pytest.fixture
def world(sqlite_server: LiveServer) -> tuple[LiveServer, Callable[[], Things]]:
    counter = iter(range(10_000))
    server = sqlite_server

    def make() -> Things:
        things = _make(server, next(counter))
        with server.client("alice") as c:
            task = c.get(f"/api/v2/tasks/me/{things.task_id}").json()
        things.extra.update(agent_uuid=task["template_id"], version_uuid=task["template_version_id"],
                            echo_version=server.agents["Echo"]["version_id"])
        return things

    return server, make


def test_every_route_answers_each_role_as_the_rules_say(world: tuple[LiveServer, Callable[[], Things]]) -> None:
    server, make = world
    shared = make()
    wrong: list[str] = []
    for row in ROWS:
        ragflow = row.path.startswith("/api/v1")
        for role in ROLES:
            things = make() if row.fresh and row.expect[role] == "ok" else shared
            if row.path.endswith("/logout") and role != "anon":
                things = make()
                # A logout ends the session it came with: log in for one to end.
                with server.client() as c:
                    login = c.post("/api/v2/users/login", json={"email": role, "password": PASSWORD})
                headers = {"Coder-Session-Token": login.json()["session_token"]}
            else:
                headers = _headers(server, role, ragflow, things)
            body = row.body(things) if row.body else None
            if body is not None:
                headers = {**headers, "Content-Type": "application/json"}
            with httpx.Client(base_url=server.url, timeout=30) as c:
                answer = c.request(row.method, _url(row, things, server), headers=headers,
                                   content=None if body is None else json.dumps(body))
            got = _classify(answer, ragflow)
            if got != row.expect[role]:
                wrong.append(f"{row.method} {row.path} as {role}: expected {row.expect[role]}, got {got} "
                             f"({answer.status_code} {answer.text[:160]})")
    assert wrong == [], "\n".join(wrong)
    with server.client() as c:
        still = c.get("/api/v2/users/me", headers={"Coder-Session-Token": shared.extra["token"]})
    assert still.status_code == 200, "nobody else revoked alice's token"

