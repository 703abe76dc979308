"""ragflow's account routes over HTTP: sign-up (off, then on), login, API tokens, the chat models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from taskcanvas.testing.model_server import Reply, Rule, ScriptedModelServer
from tests.support.server import PASSWORD, LiveServer, start_server

MODELS_TOML = """
[models]
default = "deepseek-chat@DeepSeek"

[models."deepseek-chat@DeepSeek"]
provider = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "deepseek-chat"
api_key = "not-used"

[models."qwen-max@main@Tongyi"]
provider = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "qwen-max"
api_key = "not-used"
"""


def api(server: LiveServer, user: str | None = None, *, token: str | None = None) -> httpx.Client:
    token = token or (server.tokens[user] if user else None)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"{server.url}/api/v1", timeout=30, headers=headers)


@pytest.fixture
def open_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LiveServer]:
    config = tmp_path / "models.toml"
    config.write_text(MODELS_TOML, encoding="utf-8")
    yield from start_server(tmp_path, "sqlite", request,
                            extra_env={"TASKCANVAS_ALLOW_SIGNUP": "true", "TASKCANVAS_CONFIG": str(config)})


# ---------------------------------------------------------------------------- sign-up
def test_signup_is_refused_unless_the_settings_allow_it(sqlite_server: LiveServer) -> None:
    with api(sqlite_server) as c:
        missing = c.post("/users", json={"email": "new@example.com"}).json()
        refused = c.post("/users", json={"nickname": "New", "email": "new@example.com",
                                         "password": "long enough"}).json()
    assert missing == {"code": 101, "message": "required argument are missing: nickname,password; ", "data": None}
    assert refused == {"code": 103, "message": "User registration is disabled!", "data": False}


def test_signup_makes_an_account_and_logs_it_in(open_server: LiveServer) -> None:
    form = {"nickname": "Ada L.", "email": "ada.lovelace@example.com", "password": "analytical engine"}
    with api(open_server) as c:
        made = c.post("/users", json=form)
        again = c.post("/users", json=form).json()
        bad_email = c.post("/users", json={**form, "email": "not-an-email"}).json()
        bad_nickname = c.post("/users", json={**form, "email": "x@example.com", "nickname": "<b>"}).json()
    assert made.status_code == 200 and made.json()["code"] == 0
    assert made.json()["message"] == "Ada L., welcome aboard!"
    user = made.json()["data"]
    assert user["email"] == "ada.lovelace@example.com" and user["nickname"] == "Ada L."
    assert user["username"] == "ada-lovelace" and user["is_superuser"] is False
    assert made.headers["access-control-expose-headers"] == "Authorization"
    with api(open_server, token=made.headers["authorization"]) as c:
        assert c.get("/agents").json()["code"] == 0
    assert again == {"code": 103, "message": "Email: ada.lovelace@example.com has already registered!",
                     "data": False}
    assert bad_email == {"code": 103, "message": "Invalid email address: not-an-email!", "data": False}
    assert bad_nickname == {"code": 101, "message": "Nickname contains invalid characters.", "data": False}


# ---------------------------------------------------------------------------- login
def test_login_puts_the_token_in_the_authorization_header(sqlite_server: LiveServer) -> None:
    with api(sqlite_server) as c:
        done = c.post("/auth/login", json={"email": "alice@example.com", "password": PASSWORD})
        wrong = c.post("/auth/login", json={"email": "alice@example.com", "password": "not it"}).json()
        nobody = c.post("/auth/login", json={"email": "nobody@example.com", "password": "not it"}).json()
        empty = c.post("/auth/login", json={}).json()
    assert done.status_code == 200
    assert done.json()["code"] == 0 and done.json()["message"] == "Welcome back!"
    assert done.json()["data"]["email"] == "alice@example.com"
    assert done.json()["data"]["id"] == sqlite_server.user_ids["alice"].replace("-", "")
    token = done.headers["authorization"]
    assert token.startswith("tc_")
    with api(sqlite_server, token=token) as c:
        assert c.get("/agents").json()["code"] == 0
    refused = {"code": 109, "message": "Email and password do not match!", "data": False}
    assert wrong == refused and nobody == refused
    assert empty == {"code": 109, "message": "Unauthorized!", "data": False}


# ---------------------------------------------------------------------------- API tokens
def test_tokens_are_made_listed_masked_and_revoked(sqlite_server: LiveServer) -> None:
    with api(sqlite_server) as c:
        unauthenticated = c.get("/system/tokens")
    with api(sqlite_server, "bob") as c:
        made = c.post("/system/tokens").json()
        token = made["data"]["token"]
        listed = c.get("/system/tokens").json()
        with api(sqlite_server, token=token) as fresh:
            works = fresh.get("/agents").json()
        revoked = c.delete(f"/system/tokens/{token}").json()
        missing = c.delete("/system/tokens/missing_token").json()
        with api(sqlite_server, token=token) as fresh:
            after = fresh.get("/agents")
    assert unauthenticated.status_code == 401 and unauthenticated.json()["code"] == 401
    assert made["code"] == 0 and token.startswith("tc_")
    assert made["data"]["tenant_id"] == sqlite_server.user_ids["bob"].replace("-", "")
    assert isinstance(made["data"]["create_time"], int)
    key_id = token.split("_")[1]
    shown = [t for t in listed["data"] if key_id in t["token"]]
    assert len(shown) == 1 and shown[0]["token"] != token and shown[0]["token"].endswith(token[-4:])
    assert works["code"] == 0
    assert revoked == {"code": 0, "message": "success", "data": True}
    assert missing == {"code": 0, "message": "success", "data": True}
    assert after.status_code == 401 and after.json()["code"] == 401


def test_a_token_is_revoked_by_its_masked_form_and_only_by_its_owner(sqlite_server: LiveServer) -> None:
    with api(sqlite_server, "bob") as c:
        token = c.post("/system/tokens", params={"name": "script"}).json()["data"]["token"]
        masked = next(t["token"] for t in c.get("/system/tokens").json()["data"] if t["name"] == "script")
    with api(sqlite_server, "alice") as c:
        assert c.delete(f"/system/tokens/{token}").json()["data"] is True
    with api(sqlite_server, token=token) as c:
        assert c.get("/agents").json()["code"] == 0
    with api(sqlite_server, "bob") as c:
        c.delete(f"/system/tokens/{masked}")
    with api(sqlite_server, token=token) as c:
        assert c.get("/agents").status_code == 401


# ---------------------------------------------------------------------------- models
def test_models_list_the_configured_ones_in_ragflows_shape(open_server: LiveServer) -> None:
    with api(open_server, "alice") as c:
        listed = c.get("/models").json()
        embeddings = c.get("/models", params={"type": "embedding"}).json()
        defaults = c.get("/models/default").json()
    assert set(listed) == {"code", "data"} and listed["code"] == 0
    rows = {m["model_id"]: m for m in listed["data"]}
    assert set(rows) == {"deepseek-chat@DeepSeek", "qwen-max@main@Tongyi"}
    assert rows["deepseek-chat@DeepSeek"] | {"tenant_id": None} == {
        "model_id": "deepseek-chat@DeepSeek", "tenant_id": None, "model_type": ["chat"], "name": "deepseek-chat",
        "model_name": "deepseek-chat", "provider_id": "", "provider_name": "DeepSeek", "model_provider": "DeepSeek",
        "instance_id": "", "instance_name": "default", "model_instance": "default", "rank": 500, "enable": True}
    assert rows["qwen-max@main@Tongyi"]["model_instance"] == "main"
    assert embeddings == {"code": 0, "data": []}
    assert defaults["data"]["models"][0]["model_id"] == "deepseek-chat@DeepSeek"


def test_the_default_model_is_kept_per_user(open_server: LiveServer) -> None:
    with api(open_server, "alice") as c:
        missing = c.patch("/models/default", json={}).json()
        bad_type = c.patch("/models/default", json={"model_type": "telepathy"}).json()
        unknown = c.patch("/models/default", json={"model_type": "chat", "model_id": "nope"}).json()
        chosen = c.patch("/models/default", json={"model_type": "chat", "model_provider": "Tongyi",
                                                   "model_instance": "main", "model_name": "qwen-max"}).json()
        mine = c.get("/models/default").json()["data"]["models"]
    with api(open_server, "bob") as c:
        bobs = c.get("/models/default").json()["data"]["models"]
    assert missing == {"code": 101, "message": "model_type is required"}
    assert bad_type == {"code": 102, "message": "model type 'telepathy' is invalid"}
    assert unknown == {"code": 102, "message": "model_id 'nope' not found"}
    assert chosen == {"code": 0}
    assert [(m["model_id"], m["model_provider"], m["enable"]) for m in mine] == [
        ("qwen-max@main@Tongyi", "Tongyi", True)]
    assert [m["model_id"] for m in bobs] == ["deepseek-chat@DeepSeek"]


def test_a_users_default_model_answers_their_canvases_that_name_none(request: pytest.FixtureRequest,
                                                                     tmp_path: Path) -> None:
    with ScriptedModelServer([Rule(Reply(text="from qwen"), model="qwen-max"),
                              Rule(Reply(text="from deepseek"), model="deepseek-chat")]) as model:
        config = tmp_path / "models.toml"
        config.write_text(MODELS_TOML.replace("http://127.0.0.1:9/v1", model.base_url), encoding="utf-8")
        for server in start_server(tmp_path, "sqlite", request, extra_env={"TASKCANVAS_CONFIG": str(config)}):
            dsl = {"components": {
                "begin": {"obj": {"component_name": "Begin", "params": {}}, "downstream": ["LLM:a"], "upstream": []},
                "LLM:a": {"obj": {"component_name": "LLM", "params": {
                    "llm_id": "", "prompts": [{"role": "user", "content": "{sys.query}"}]}},
                    "downstream": ["Message:a"], "upstream": ["begin"]},
                "Message:a": {"obj": {"component_name": "Message", "params": {"content": ["{LLM:a@content}"]}},
                              "downstream": [], "upstream": ["LLM:a"]}}}
            with api(server, "alice") as c:
                agent = c.post("/agents", json={"title": "no model named", "dsl": dsl, "permission": "team"}
                               ).json()["data"]["id"]
                before = c.post("/agents/chat/completions", json={"agent_id": agent, "query": "hi"}).json()
                c.patch("/models/default", json={"model_type": "chat", "model_id": "qwen-max@main@Tongyi"})
                after = c.post("/agents/chat/completions", json={"agent_id": agent, "query": "hi"}).json()
                version = c.get(f"/agents/{agent}/versions").json()["data"][0]["id"]
            with server.client("alice") as c:  # a task's first run starts from what its creation read
                task = c.post("/api/v2/tasks/me", json={"template_version_id": version, "input": "hi"}).json()
            done = server.wait_for_task("alice", task["id"], until=lambda t: (t.get("current_state") or {}).get(
                "state") in ("complete", "failed"))
            with api(server, "bob") as c:
                bobs = c.post("/agents/chat/completions", json={"agent_id": agent, "query": "hi"}).json()
            assert before["data"]["data"]["outputs"]["content"] == "from deepseek"
            assert after["data"]["data"]["outputs"]["content"] == "from qwen"
            assert done["current_state"]["message"] == "from qwen"
            assert bobs["data"]["data"]["outputs"]["content"] == "from deepseek", "the choice is alice's only"
