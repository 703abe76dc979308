"""The scripted OpenAI-compatible server, spoken to over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from taskcanvas.testing import Reply, Rule, ScriptedModelServer, load_script


def post(server: ScriptedModelServer, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, headers=headers, timeout=10)


def ask(server: ScriptedModelServer, text: str, **extra: Any) -> str:
    body = {"model": "m", "messages": [{"role": "user", "content": text}], **extra}
    response = post(server, body)
    assert response.status_code == 200, response.text
    return str(response.json()["choices"][0]["message"]["content"])


def test_without_rules_it_echoes_the_last_user_message() -> None:
    with ScriptedModelServer() as server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/v1")
        assert ask(server, "hello there") == "hello there"


def test_the_first_matching_rule_answers() -> None:
    rules = [
        Rule("from system", system_contains="pirate"),
        Rule("with tools", has_tools=True),
        Rule("tool result", tool_result_contains="42"),
        Rule("other model", model="big"),
        Rule("by function", when=lambda r: r.get("temperature") == 0.5),
        Rule("anywhere", contains="needle"),
        Rule("weather", last_user_contains="weather"),
    ]
    with ScriptedModelServer(rules) as server:
        def chat(messages: list[dict[str, Any]], **extra: Any) -> str:
            response = post(server, {"model": extra.pop("model", "m"), "messages": messages, **extra})
            return str(response.json()["choices"][0]["message"]["content"])

        user = {"role": "user", "content": "what is the weather?"}
        assert chat([{"role": "system", "content": "You are a pirate"}, user]) == "from system"
        assert chat([user], tools=[{"type": "function", "function": {"name": "f"}}]) == "with tools"
        assert chat([user, {"role": "assistant", "content": None, "tool_calls": []},
                     {"role": "tool", "tool_call_id": "c", "content": "answer: 42"}]) == "tool result"
        assert chat([user], model="big") == "other model"
        assert chat([user], temperature=0.5) == "by function"
        assert chat([{"role": "assistant", "content": "a needle"}, user]) == "anywhere"
        assert chat([user]) == "weather"
        assert chat([{"role": "user", "content": [{"type": "text", "text": "weather "},
                                                  {"type": "text", "text": "today"}]}]) == "weather"
        assert chat([{"role": "user", "content": "something else"}]) == "something else"


def test_tool_results_match_only_the_latest_round() -> None:
    with ScriptedModelServer([Rule("saw it", tool_result_contains="old")]) as server:
        messages = [{"role": "user", "content": "q"}, {"role": "tool", "tool_call_id": "1", "content": "old"},
                    {"role": "assistant", "content": "more"}, {"role": "user", "content": "again"}]
        assert post(server, {"model": "m", "messages": messages}).json()["choices"][0]["message"]["content"] == "again"


def test_times_limits_a_rule_and_counts_its_use() -> None:
    once = Rule("first", last_user_contains="hi", times=1)
    with ScriptedModelServer([once, Rule("later", last_user_contains="hi")]) as server:
        assert [ask(server, "hi") for _ in range(3)] == ["first", "later", "later"]
        assert once.used == 1


def test_requests_are_logged_in_order() -> None:
    with ScriptedModelServer() as server:
        ask(server, "one", temperature=0.1)
        ask(server, "two")
        assert [r["messages"][0]["content"] for r in server.requests] == ["one", "two"]
        assert server.requests[0]["temperature"] == 0.1
        assert server.last_request["messages"][0]["content"] == "two"


def test_error_replies_use_openai_error_bodies_and_headers() -> None:
    rules = [Rule(Reply.fail(429, headers={"Retry-After": "3"}), last_user_contains="busy"),
             Rule(Reply.context_overflow(), last_user_contains="long"),
             Rule(Reply.fail(500, "boom"), last_user_contains="crash")]
    with ScriptedModelServer(rules) as server:
        busy = post(server, {"model": "m", "messages": [{"role": "user", "content": "busy"}]})
        assert busy.status_code == 429 and busy.headers["retry-after"] == "3"
        assert busy.json()["error"]["code"] == "rate_limit_exceeded"
        long = post(server, {"model": "m", "messages": [{"role": "user", "content": "long"}]})
        assert long.status_code == 400 and long.json()["error"]["code"] == "context_length_exceeded"
        assert "maximum context length" in long.json()["error"]["message"]
        crash = post(server, {"model": "m", "messages": [{"role": "user", "content": "crash"}]})
        assert crash.status_code == 500 and crash.json()["error"]["message"] == "boom"


def test_a_delay_holds_the_answer_back() -> None:
    with ScriptedModelServer([Rule(Reply(text="late", delay=0.3))]) as server:
        started = time.monotonic()
        assert ask(server, "x") == "late"
        assert time.monotonic() - started >= 0.3


def test_api_key_is_checked_when_set() -> None:
    with ScriptedModelServer(api_key="sekrit") as server:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
        assert post(server, body).status_code == 401
        assert post(server, body, Authorization="Bearer wrong").status_code == 401
        assert post(server, body, Authorization="Bearer sekrit").status_code == 200
        assert len(server.requests) == 3


def test_bad_requests_and_unknown_routes() -> None:
    with ScriptedModelServer() as server:
        assert httpx.post(f"{server.base_url}/chat/completions", content=b"{not json", timeout=5).status_code == 400
        assert httpx.post(f"{server.base_url}/embeddings", json={}, timeout=5).status_code == 404
        assert httpx.get(f"{server.url}/nothing", timeout=5).status_code == 404


def test_models_endpoint_lists_the_models() -> None:
    with ScriptedModelServer([Rule("x", model="scripted-big")], models=("a", "b")) as server:
        data = httpx.get(f"{server.base_url}/models", timeout=5).json()
        assert [m["id"] for m in data["data"]] == ["a", "b", "scripted-big"]


def test_the_openai_sdk_reads_text_tool_calls_usage_and_streams() -> None:
    weather = Reply(tool_calls=[{"name": "weather", "arguments": {"city": "Paris"}},
                                {"name": "time", "arguments": "{}", "id": "call_x"}])
    rules = [Rule(weather, has_tools=True),
             Rule(Reply(text="Sunny and warm today", reasoning="look outside", usage=(7, 4)))]
    with ScriptedModelServer(rules) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
        plain = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert plain.choices[0].message.content == "Sunny and warm today"
        assert plain.choices[0].message.reasoning_content == "look outside"  # type: ignore[attr-defined]
        assert plain.usage is not None and (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (7, 4)

        tools = [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]
        called = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                tools=tools)  # type: ignore[list-item]
        calls = called.choices[0].message.tool_calls or []
        assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
            ("call_0", "weather", {"city": "Paris"}), ("call_x", "time", {})]
        assert called.choices[0].finish_reason == "tool_calls"

        chunks = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}],
                                                     stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Sunny and warm today"
        assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
        assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 11
        client.close()


def test_a_client_that_walks_away_is_noticed() -> None:
    with ScriptedModelServer([Rule(Reply(text="word " * 200, chunk_delay=0.02))]) as server:
        body = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "x"}]}
        with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=10) as response:
            for _ in response.iter_lines():
                break
        assert server.wait_for_disconnect(timeout=5)
        assert server.disconnects == 1


async def test_async_context_manager_and_callable_default() -> None:
    async with ScriptedModelServer(default=lambda r: Reply(text=f"model={r['model']}")) as server:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{server.base_url}/chat/completions",
                                         json={"model": "abc", "messages": []})
        assert response.json()["choices"][0]["message"]["content"] == "model=abc"


SCRIPT = {
    "models": ["demo"],
    "rules": [
        {"match": {"last_user_contains": "weather"}, "times": 1,
         "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}},
        {"match": {"has_tools": False}, "reply": "plain"},
        {"match": {"last_user_contains": "busy"}, "reply": {"fail": 429, "message": "slow down"}},
    ],
    "default": {"text": "fallback"},
}


def test_scripts_load_from_json_and_toml(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SCRIPT))
    (tmp_path / "s.toml").write_text(
        'models = ["demo"]\n'
        "[[rules]]\nreply = \"hello\"\nmatch = { last_user_contains = \"hi\" }\n"
        "[[rules]]\nreply = { fail = 503 }\n"
    )
    from_json = load_script(tmp_path / "s.json")
    assert from_json.models == ("demo",) and from_json.default == Reply(text="fallback")
    assert from_json.rules[0].times == 1 and from_json.rules[0].last_user_contains == "weather"
    assert from_json.rules[2].reply == Reply.fail(429, "slow down")
    from_toml = load_script(tmp_path / "s.toml")
    assert from_toml.rules[0].reply == Reply(text="hello") and from_toml.rules[1].reply == Reply.fail(503)


@pytest.mark.parametrize("script, words", [
    ({"rules": [{"reply": "x", "match": {"last_user": "a"}}]}, "last_user"),
    ({"rules": [{"reply": {"txt": "x"}}]}, "txt"),
    ({"rules": [{"match": {}}]}, "needs a reply"),
    ({"rule": []}, "rule"),
])
def test_script_mistakes_are_named(tmp_path: Path, script: dict[str, Any], words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(script))
    with pytest.raises(ValueError, match=words):
        load_script(path)


def test_runs_as_a_program_serving_a_script(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SCRIPT))
    proc = subprocess.Popen([sys.executable, "-m", "taskcanvas.testing.model_server", "--script",
                             str(tmp_path / "s.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        body = {"model": "demo", "messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{base_url}/chat/completions", json=body, timeout=10).json()
        assert answer["choices"][0]["message"]["content"] == "plain"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_program_refuses_a_bad_script(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"rules": [{"reply": {"nope": 1}}]}')
    proc = subprocess.run([sys.executable, "-m", "taskcanvas.testing.model_server", "--script",
                           str(tmp_path / "bad.json")], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr
