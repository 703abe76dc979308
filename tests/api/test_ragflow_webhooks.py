"""ragflow's agent webhooks over HTTP: a Begin in Webhook mode, its security and schema checks, both
execution modes, and the owner's polling of the calls' events."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt

from tests.support.canvas import cpn, make_canvas
from tests.support.server import LiveServer

ANONYMOUS = {"auth_type": "none", "allow_anonymous": True}
BODY_SCHEMA = {"body": {"type": "object", "required": ["name"],
                        "properties": {"name": {"type": "string"}, "count": {"type": "number"},
                                       "tags": {"type": "array<string>"}}}}


def webhook_canvas(**params: Any) -> dict[str, Any]:
    begin = {"mode": "Webhook", "methods": ["POST"], "security": ANONYMOUS, "schema": BODY_SCHEMA,
             "execution_mode": "Deferred", "content_types": "application/json", **params}
    return make_canvas({"begin": cpn("Begin", begin, down=["Message:Hi"]),
                        "Message:Hi": cpn("Message", {"content": ["Hello {begin@body}"]})})


def api(server: LiveServer, user: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.tokens[user]}"} if user else {}
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30, headers=headers)


def agent_with(server: LiveServer, title: str, dsl: dict[str, Any]) -> str:
    with api(server, "alice") as c:
        created = c.post("/agents", json={"title": title, "dsl": dsl}).json()
    assert created["code"] == 0, created
    return str(created["data"]["id"])


def test_a_blocking_webhook_answers_with_the_messages(sqlite_server: LiveServer) -> None:
    agent = agent_with(sqlite_server, "Hook", webhook_canvas())
    with api(sqlite_server) as c:
        done = c.post(f"/agents/{agent}/webhook", json={"name": "Ada", "count": "3", "extra": 1})
    assert done.status_code == 200
    answer = done.json()
    assert answer["success"] is True and answer["code"] == 200
    assert "Ada" in answer["message"] and "3" in answer["message"] and "extra" not in answer["message"]


def test_an_immediate_webhook_answers_its_template_and_the_owner_polls_the_run(sqlite_server: LiveServer) -> None:
    agent = agent_with(sqlite_server, "Quick hook", webhook_canvas(
        execution_mode="Immediately", response={"status": 202, "body_template": '{"accepted": true}'}))
    with api(sqlite_server, "alice") as c:
        first = c.get(f"/agents/{agent}/webhook/logs").json()["data"]
        nothing_yet = c.get(f"/agents/{agent}/webhook/logs", params={"since_ts": 0}).json()["data"]
    with api(sqlite_server) as c:
        accepted = c.post(f"/agents/{agent}/webhook", json={"name": "Bob"})
    assert first["webhook_id"] is None and first["events"] == [] and first["finished"] is False
    assert isinstance(first["next_since_ts"], float)
    assert nothing_yet == {"webhook_id": None, "events": [], "next_since_ts": 0, "finished": False}
    assert accepted.status_code == 202 and accepted.json() == {"accepted": True}
    with api(sqlite_server, "alice") as c:
        found = c.get(f"/agents/{agent}/webhook/logs", params={"since_ts": 0}).json()["data"]
        assert found["webhook_id"] and found["events"] == []
        since, events, finished = found["next_since_ts"], [], False
        deadline = time.monotonic() + 30
        while not finished and time.monotonic() < deadline:
            page = c.get(f"/agents/{agent}/webhook/logs",
                         params={"since_ts": since, "webhook_id": found["webhook_id"]}).json()["data"]
            events += page["events"]
            since, finished = page["next_since_ts"], page["finished"]
        unknown = c.get(f"/agents/{agent}/webhook/logs", params={"since_ts": 0, "webhook_id": "nope"}).json()
    with api(sqlite_server, "bob") as c:
        not_owner = c.get(f"/agents/{agent}/webhook/logs", params={"since_ts": 0}).json()
    assert finished
    assert events[-1]["event"] == "finished" and events[-1]["success"] is True
    assert "message" in [e["event"] for e in events]
    assert unknown["data"] == {"webhook_id": "nope", "events": [], "next_since_ts": 0.0, "finished": True}
    assert not_owner == {"code": 102, "message": "Canvas not found.", "data": False}


def test_webhook_refusals_are_http_400(sqlite_server: LiveServer) -> None:
    hook = agent_with(sqlite_server, "Hook", webhook_canvas())
    plain = str(sqlite_server.agents["Echo"]["id"]).replace("-", "")
    insecure = agent_with(sqlite_server, "Insecure", webhook_canvas(security={}))
    closed = agent_with(sqlite_server, "Closed", webhook_canvas(security={"auth_type": "none"}))
    with api(sqlite_server) as c:
        answers = {
            "unknown agent": c.post(f"/agents/{'0' * 32}/webhook", json={"name": "x"}),
            "no webhook": c.post(f"/agents/{plain}/webhook", json={"name": "x"}),
            "method": c.get(f"/agents/{hook}/webhook"),
            "no security": c.post(f"/agents/{insecure}/webhook", json={"name": "x"}),
            "anonymous": c.post(f"/agents/{closed}/webhook", json={"name": "x"}),
            "content type": c.post(f"/agents/{hook}/webhook", content="name=x",
                                   headers={"Content-Type": "text/plain"}),
            "required": c.post(f"/agents/{hook}/webhook", json={"count": 1}),
            "cast": c.post(f"/agents/{hook}/webhook", json={"name": "x", "count": "many"}),
            "type": c.post(f"/agents/{hook}/webhook", json={"name": "x", "tags": [1, 2]}),
        }
    messages = {what: (a.status_code, a.json()) for what, a in answers.items()}
    assert messages == {
        "unknown agent": (400, {"code": 400, "message": "Canvas not found."}),
        "no webhook": (400, {"code": 400, "message": "Webhook not configured for this agent."}),
        "method": (400, {"code": 400, "message": "HTTP method 'GET' not allowed for this webhook."}),
        "no security": (400, {"code": 400, "message": "Webhook security is required. Set allow_anonymous to true "
                                                      "to permit unauthenticated webhooks."}),
        "anonymous": (400, {"code": 400, "message": "Anonymous webhook access requires allow_anonymous to be true"}),
        "content type": (400, {"code": 400, "message": "Invalid Content-Type: expect 'application/json', "
                                                       "got 'text/plain'"}),
        "required": (400, {"code": 400, "message": "body missing required field: name"}),
        "cast": (400, {"code": 400, "message": "body.count auto-cast failed: Cannot convert 'many' to number"}),
        "type": (400, {"code": 400, "message": "body.tags type mismatch: expected array<string>, got list"}),
    }


def test_token_basic_and_jwt_security(sqlite_server: LiveServer) -> None:
    by_token = agent_with(sqlite_server, "Token hook", webhook_canvas(security={
        "auth_type": "token", "token": {"token_header": "X-Hook-Token", "token_value": "s3cret"}}))
    by_basic = agent_with(sqlite_server, "Basic hook", webhook_canvas(security={
        "auth_type": "basic", "basic_auth": {"username": "hook", "password": "pw"}}))
    by_jwt = agent_with(sqlite_server, "JWT hook", webhook_canvas(security={
        "auth_type": "jwt", "jwt": {"secret": "k" * 32, "required_claims": ["tenant"]}}))
    basic = "Basic " + base64.b64encode(b"hook:pw").decode()
    good_jwt = jwt.encode({"tenant": "t1"}, "k" * 32, algorithm="HS256")
    claimless = jwt.encode({"other": 1}, "k" * 32, algorithm="HS256")
    with api(sqlite_server) as c:
        token_bad = c.post(f"/agents/{by_token}/webhook", json={"name": "x"}, headers={"X-Hook-Token": "no"})
        token_ok = c.post(f"/agents/{by_token}/webhook", json={"name": "x"}, headers={"X-Hook-Token": "s3cret"})
        basic_bad = c.post(f"/agents/{by_basic}/webhook", json={"name": "x"})
        basic_ok = c.post(f"/agents/{by_basic}/webhook", json={"name": "x"}, headers={"Authorization": basic})
        jwt_missing_claim = c.post(f"/agents/{by_jwt}/webhook", json={"name": "x"},
                                   headers={"Authorization": f"Bearer {claimless}"})
        jwt_ok = c.post(f"/agents/{by_jwt}/webhook", json={"name": "x"},
                        headers={"Authorization": f"Bearer {good_jwt}"})
    assert (token_bad.status_code, token_bad.json()["message"]) == (400, "Invalid token authentication")
    assert token_ok.status_code == 200 and token_ok.json()["success"] is True
    assert (basic_bad.status_code, basic_bad.json()["message"]) == (400, "Invalid Basic Auth credentials")
    assert basic_ok.status_code == 200
    assert (jwt_missing_claim.status_code, jwt_missing_claim.json()["message"]) == (400, "Missing JWT claim: tenant")
    assert jwt_ok.status_code == 200


def test_the_rate_limit_refuses_calls_beyond_it(sqlite_server: LiveServer) -> None:
    agent = agent_with(sqlite_server, "Limited", webhook_canvas(security={
        **ANONYMOUS, "rate_limit": {"limit": 2, "per": "day"}}))
    with api(sqlite_server) as c:
        codes = [c.post(f"/agents/{agent}/webhook", json={"name": "x"}).status_code for _ in range(3)]
        refused = c.post(f"/agents/{agent}/webhook", json={"name": "x"}).json()
    assert codes == [200, 200, 400]
    assert refused["message"] == "Rate limit error: Too many requests (rate limit exceeded)"


def test_a_test_call_is_for_the_owner(sqlite_server: LiveServer) -> None:
    agent = agent_with(sqlite_server, "Hook", webhook_canvas())
    with api(sqlite_server, "bob") as c:
        refused = c.post(f"/agents/{agent}/webhook/test", json={"name": "x"}).json()
    with api(sqlite_server, "alice") as c:
        tested = c.post(f"/agents/{agent}/webhook/test", json={"name": "x"})
    assert refused == {"code": 103, "message": "Only the owner of the agent is authorized for this operation.",
                       "data": False}
    assert tested.status_code == 200 and tested.json()["success"] is True
