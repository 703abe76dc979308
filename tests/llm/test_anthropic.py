"""AnthropicChatModel against a Messages API on 127.0.0.1 (the replay server, answering as scripted here).

The server speaks the Messages API as the SDK expects it: JSON answers, SSE streams
(``message_start``, ``content_block_*``, ``message_delta``, ``message_stop``, ``ping``, ``error``)
and error bodies ``{"type": "error", "error": {"type", "message"}}``.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from taskcanvas.llm.anthropic import AnthropicChatModel, to_anthropic_messages, to_anthropic_tool
from taskcanvas.llm.errors import ContextTooLong, ModelAuthError, ModelRateLimited, ModelUnavailable
from taskcanvas.llm.protocol import ChatChunk, ChatResponse, GenerationOptions
from taskcanvas.llm.retry import RetryPolicy
from tests.support.replay import Recorded, ReplayServer, Reply

FAST = RetryPolicy(max_retries=2, delay=0.01)
KEY = "sk-ant-test-9876"
USER = [{"role": "user", "content": "hello"}]
CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city", "parameters": CITY}}]


MESSAGES = "/v1/messages"


def script(server: ReplayServer, *replies: dict[str, Any]) -> None:
    """``POST /v1/messages`` answers with these scripted replies, in order (the last one repeats)."""
    server.route("POST", MESSAGES, *[functools.partial(_answer, reply) for reply in replies])


def _answer(reply: dict[str, Any], request: Recorded) -> Reply:
    """The Messages API's answer to ``request``: an error, an SSE stream or a JSON message."""
    body = request.json()
    if "status" in reply:
        return Reply(reply["status"], {"type": "error", "error": reply["error"]}, headers=reply.get("headers", {}))
    if body.get("stream"):
        events = (f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode() for event in _events(body, reply))
        return Reply(200, content_type="text/event-stream", stream=events, chunk_delay=reply.get("chunk_delay", 0))
    return Reply(200, _message(body, reply))


def _usage(reply: dict[str, Any]) -> dict[str, int]:
    return {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2, **reply.get("usage", {})}


def _stop_reason(reply: dict[str, Any]) -> str:
    has_tool = any(b["type"] == "tool_use" for b in reply["content"])
    return str(reply.get("stop_reason") or ("tool_use" if has_tool else "end_turn"))


def _message(body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    content = [({**b, "signature": "sig"} if b["type"] == "thinking" else b) for b in reply["content"]]
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": content,
            "stop_reason": _stop_reason(reply), "stop_sequence": None, "usage": _usage(reply)}


def _events(body: dict[str, Any], reply: dict[str, Any]) -> Iterator[dict[str, Any]]:
    usage = _usage(reply)
    yield {"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"], "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}}
    yield {"type": "ping"}
    for index, block in enumerate(reply["content"]):
        if block["type"] == "text":
            yield {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            for word in block["text"].split(" "):
                yield {"type": "content_block_delta", "index": index,
                       "delta": {"type": "text_delta", "text": word + " "}}
        elif block["type"] == "thinking":
            yield {"type": "content_block_start", "index": index,
                   "content_block": {"type": "thinking", "thinking": "", "signature": ""}}
            yield {"type": "content_block_delta", "index": index,
                   "delta": {"type": "thinking_delta", "thinking": block["thinking"]}}
            yield {"type": "content_block_delta", "index": index, "delta": {"type": "signature_delta",
                                                                            "signature": "sig"}}
        else:
            yield {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}
            text = json.dumps(block["input"])
            for at in range(0, len(text), 4):
                yield {"type": "content_block_delta", "index": index,
                       "delta": {"type": "input_json_delta", "partial_json": text[at:at + 4]}}
        yield {"type": "content_block_stop", "index": index}
        if "stream_error" in reply:
            yield {"type": "error", "error": reply["stream_error"]}
            return
    yield {"type": "message_delta", "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
           "usage": {"output_tokens": usage["output_tokens"]}}
    yield {"type": "message_stop"}


@pytest.fixture
def server(replay: ReplayServer) -> ReplayServer:
    """Speaks the Messages API on ``POST /v1/messages``; answers "Hi!" unless a test scripts it."""
    script(replay, {"content": [{"type": "text", "text": "Hi!"}]})
    return replay


@pytest.fixture
async def model(server: ReplayServer) -> AsyncIterator[AnthropicChatModel]:
    chat_model = AnthropicChatModel("claude-test", api_key=KEY, base_url=server.base, retry=FAST)
    yield chat_model
    await chat_model.aclose()


async def collect(model: AnthropicChatModel, messages: Any = USER, **kwargs: Any) -> tuple[list[ChatChunk],
                                                                                          ChatResponse]:
    chunks = [c async for c in model.stream(messages, **kwargs)]
    assert chunks[-1].done and chunks[-1].response is not None
    return chunks[:-1], chunks[-1].response


# ---------------------------------------------------------------------------- translation
def test_openai_messages_become_anthropic_turns() -> None:
    system, turns = to_anthropic_messages([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,QUJD"}},
                                     {"type": "image_url", "image_url": {"url": "https://example.invalid/a.png"}}]},
        {"role": "assistant", "content": "Let me check.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "not json"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "rainy"}]},
        {"role": "user", "content": "Thanks"},
        {"role": "system", "content": "Answer in French."},
        {"role": "assistant", "content": ""},
    ])
    assert system == "Be brief.\n\nAnswer in French."
    assert turns == [
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "QUJD"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.invalid/a.png"}}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"arguments": "not json"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "rainy"}]},
            {"type": "text", "text": "Thanks"}]},
    ]


def test_openai_function_tools_become_anthropic_tools() -> None:
    assert to_anthropic_tool(TOOLS[0]) == {"name": "weather", "description": "Weather in a city",
                                           "input_schema": TOOLS[0]["function"]["parameters"]}
    assert to_anthropic_tool({"type": "function", "function": {"name": "now"}}) == {
        "name": "now", "input_schema": {"type": "object", "properties": {}}}
    native = {"name": "x", "input_schema": {"type": "object"}}
    assert to_anthropic_tool(native) == native


async def test_the_request_carries_system_tools_key_and_default_max_tokens(server: ReplayServer,
                                                                         model: AnthropicChatModel) -> None:
    await model.chat([{"role": "system", "content": "Be brief."}, *USER], tools=TOOLS,
                     options=GenerationOptions(tool_choice="required"))
    sent = server.requests[-1].json()
    assert sent["model"] == "claude-test" and sent["max_tokens"] == 4096 and sent["system"] == "Be brief."
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert sent["tools"] == [to_anthropic_tool(TOOLS[0])] and sent["tool_choice"] == {"type": "any"}
    headers = server.requests[-1].headers
    assert KEY in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer "))
    assert "anthropic-version" in headers


async def test_options_map_to_the_messages_api(server: ReplayServer, model: AnthropicChatModel) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    await model.chat(USER, options=GenerationOptions(
        max_tokens=100, temperature=0.3, top_p=0.8, presence_penalty=0.5, frequency_penalty=0.5, json_schema=schema,
        extra={"metadata": {"user_id": "u1"}}))
    sent = server.requests[-1].json()
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"]) == (100, 0.3, 0.8)
    assert "presence_penalty" not in sent and "frequency_penalty" not in sent
    assert sent["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert sent["metadata"] == {"user_id": "u1"}


@pytest.mark.parametrize("switch, max_tokens, expected, sent_max_tokens", [
    ("enabled", None, {"type": "enabled", "budget_tokens": 2048}, 4096),
    (True, 1500, {"type": "enabled", "budget_tokens": 1024}, 1500),
    ({"type": "enabled", "budget_tokens": 8000}, 2000, {"type": "enabled", "budget_tokens": 8000}, 12096),
    ("disabled", None, {"type": "disabled"}, 4096),
])
async def test_a_thinking_switch_becomes_the_thinking_object(server: ReplayServer, model: AnthropicChatModel,
                                                            switch: object, max_tokens: int | None,
                                                            expected: dict[str, Any], sent_max_tokens: int) -> None:
    await model.chat(USER, options=GenerationOptions(max_tokens=max_tokens, temperature=0.3,
                                                     extra={"thinking": switch}))
    sent = server.requests[-1].json()
    assert (sent["thinking"], sent["max_tokens"]) == (expected, sent_max_tokens)
    assert ("temperature" in sent) is (expected["type"] == "disabled")  # refused by the API while thinking


# ---------------------------------------------------------------------------- answers
ANSWER = {"content": [
    {"type": "thinking", "thinking": "The user wants weather."},
    {"type": "text", "text": "Checking the weather now"},
    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris", "days": 2}},
], "usage": {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 5}}


async def test_chat_reads_text_thinking_tool_use_and_usage(server: ReplayServer,
                                                           model: AnthropicChatModel) -> None:
    script(server, ANSWER)
    response = await model.chat(USER, tools=TOOLS)
    assert response.content == "Checking the weather now" and response.reasoning == "The user wants weather."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("toolu_1", "weather", {"city": "Paris", "days": 2})]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (25, 9)


async def test_stream_yields_thinking_then_text_then_the_whole_answer(server: ReplayServer,
                                                                      model: AnthropicChatModel) -> None:
    script(server, ANSWER)
    chunks, response = await collect(model, tools=TOOLS)
    assert chunks[0] == ChatChunk(reasoning="The user wants weather.")
    assert [c.content for c in chunks[1:]] == ["Checking ", "the ", "weather ", "now "]
    assert response.content == "Checking the weather now " and response.reasoning == "The user wants weather."
    assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
        ("toolu_1", "weather", {"city": "Paris", "days": 2})]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (25, 9)


async def test_stop_reasons_use_openai_words(server: ReplayServer, model: AnthropicChatModel) -> None:
    script(server, {"content": [{"type": "text", "text": "cut"}], "stop_reason": "max_tokens"})
    assert (await model.chat(USER)).finish_reason == "length"
    script(server, {"content": [{"type": "text", "text": "done"}]})
    assert (await collect(model))[1].finish_reason == "stop"


# ---------------------------------------------------------------------------- errors
def error(status: int, kind: str, message: str, **headers: str) -> dict[str, Any]:
    return {"status": status, "error": {"type": kind, "message": message}, "headers": headers}


async def test_refused_credentials(server: ReplayServer, model: AnthropicChatModel) -> None:
    script(server, error(401, "authentication_error", "invalid x-api-key"))
    with pytest.raises(ModelAuthError) as caught:
        await model.chat(USER)
    message = str(caught.value)
    assert server.base in message and "'claude-test'" in message and "invalid x-api-key" in message
    assert KEY not in message and len(server.requests) == 1


async def test_rate_limit_is_retried_then_succeeds(server: ReplayServer, model: AnthropicChatModel) -> None:
    script(server, error(429, "rate_limit_error", "slow down"), {"content": [{"type": "text", "text": "ok"}]})
    assert (await model.chat(USER)).content == "ok"
    assert len(server.requests) == 2


async def test_rate_limit_gives_up(server: ReplayServer, model: AnthropicChatModel) -> None:
    script(server, error(429, "rate_limit_error", "slow down", **{"retry-after": "0"}))
    with pytest.raises(ModelRateLimited, match=r"slow down \(gave up after 3 attempts\)"):
        await model.chat(USER)
    assert len(server.requests) == 3


async def test_prompt_too_long_is_context_too_long(server: ReplayServer, model: AnthropicChatModel) -> None:
    script(server, error(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"))
    with pytest.raises(ContextTooLong, match="prompt is too long"):
        await model.chat(USER)
    assert len(server.requests) == 1


async def test_overloaded_is_unavailable_after_retries(server: ReplayServer, model: AnthropicChatModel) -> None:
    script(server, error(529, "overloaded_error", "Overloaded"))
    with pytest.raises(ModelUnavailable, match=r"HTTP 529\): Overloaded"):
        await collect(model)
    assert len(server.requests) == 3


async def test_an_error_in_the_middle_of_a_stream(server: ReplayServer, model: AnthropicChatModel) -> None:
    script(server, {"content": [{"type": "text", "text": "partial answer"}],
                    "stream_error": {"type": "overloaded_error", "message": "Overloaded"}})
    received: list[str] = []
    with pytest.raises(ModelUnavailable, match="overloaded_error"):
        async for chunk in model.stream(USER):
            received.append(chunk.content)
    assert "".join(received) == "partial answer "
    assert len(server.requests) == 1  # text was already handed out: no retry


async def test_cancelling_the_consumer_closes_the_stream(server: ReplayServer,
                                                         model: AnthropicChatModel) -> None:
    script(server, {"content": [{"type": "text", "text": "word " * 400}], "chunk_delay": 0.02})
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in model.stream(USER):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.disconnected.wait, 5)
