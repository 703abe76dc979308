"""OpenAIChatModel against the scripted OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import pytest

from taskcanvas.llm.errors import ContextTooLong, ModelAuthError, ModelError, ModelRateLimited, ModelUnavailable
from taskcanvas.llm.openai import OpenAIChatModel, _ThinkSplitter
from taskcanvas.llm.protocol import ChatChunk, ChatResponse, GenerationOptions
from taskcanvas.llm.retry import RetryPolicy
from taskcanvas.testing import Reply, Rule, ScriptedModelServer

FAST = RetryPolicy(max_retries=2, delay=0.01)
USER = [{"role": "user", "content": "hello"}]
CITY = {"type": "object", "properties": {"city": {"type": "string"}}}
TOOLS = [{"type": "function", "function": {"name": "weather", "description": "Weather in a city", "parameters": CITY}}]


@pytest.fixture
def server() -> Iterator[ScriptedModelServer]:
    with ScriptedModelServer() as srv:
        yield srv


@pytest.fixture
async def model(server: ScriptedModelServer) -> AsyncIterator[OpenAIChatModel]:
    chat_model = OpenAIChatModel("scripted-model", base_url=server.base_url, api_key="sk-test-1234", retry=FAST)
    yield chat_model
    await chat_model.aclose()


async def collect(model: OpenAIChatModel, **kwargs: object) -> tuple[list[ChatChunk], ChatResponse]:
    chunks = [c async for c in model.stream(USER, **kwargs)]  # type: ignore[arg-type]
    assert chunks[-1].done and chunks[-1].response is not None
    assert not any(c.done for c in chunks[:-1])
    return chunks[:-1], chunks[-1].response


async def test_chat_returns_text_usage_and_finish_reason(server: ScriptedModelServer,
                                                         model: OpenAIChatModel) -> None:
    server.add(Rule(Reply(text="Hi there!", usage=(12, 3))))
    response = await model.chat(USER)
    assert response == ChatResponse(content="Hi there!", usage=response.usage, finish_reason="stop")
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (12, 3, 15)
    assert model.name == "scripted-model"
    assert server.last_request["model"] == "scripted-model" and server.last_request["messages"] == USER


async def test_stream_yields_chunks_then_the_whole_answer(server: ScriptedModelServer,
                                                          model: OpenAIChatModel) -> None:
    server.add(Rule(Reply(text="one two three four", usage=(5, 4))))
    chunks, response = await collect(model)
    assert [c.content for c in chunks] == ["one ", "two ", "three ", "four"]
    assert response.content == "one two three four" and response.finish_reason == "stop"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (5, 4)
    assert server.last_request["stream"] is True
    assert server.last_request["stream_options"] == {"include_usage": True}


async def test_tool_calls_are_assembled(server: ScriptedModelServer, model: OpenAIChatModel) -> None:
    calls = [{"name": "weather", "arguments": {"city": "Paris", "unit": "celsius"}},
             {"name": "weather", "arguments": {"city": "Tokyo"}, "id": "call_tokyo"}]
    server.add(Rule(Reply(tool_calls=calls), has_tools=True))
    for response in [await model.chat(USER, tools=TOOLS), (await collect(model, tools=TOOLS))[1]]:
        assert response.finish_reason == "tool_calls" and response.content == ""
        assert [(c.id, c.name, json.loads(c.arguments)) for c in response.tool_calls] == [
            ("call_0", "weather", {"city": "Paris", "unit": "celsius"}), ("call_tokyo", "weather", {"city": "Tokyo"})]
    assert server.last_request["tools"] == TOOLS
    assert "tool_choice" not in server.last_request


async def test_reasoning_content_is_reasoning(server: ScriptedModelServer, model: OpenAIChatModel) -> None:
    server.add(Rule(Reply(text="42", reasoning="six times seven")))
    response = await model.chat(USER)
    assert (response.reasoning, response.content) == ("six times seven", "42")
    chunks, streamed = await collect(model)
    assert "".join(c.reasoning for c in chunks) == "six times seven"
    assert [c.content for c in chunks if c.content] == ["42"]
    assert chunks[0].reasoning and not chunks[0].content  # reasoning comes first
    assert (streamed.reasoning, streamed.content) == ("six times seven", "42")


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 5])
async def test_inline_think_is_reasoning_even_when_tags_are_split(server: ScriptedModelServer,
                                                                  model: OpenAIChatModel,
                                                                  chunk_size: int | None) -> None:
    server.add(Rule(Reply(text="The answer <b>is</b> 42", reasoning="six times seven", reasoning_inline=True,
                          chunk_size=chunk_size)))
    chunks, response = await collect(model)
    assert "".join(c.reasoning for c in chunks) == "six times seven"
    assert "".join(c.content for c in chunks) == "The answer <b>is</b> 42"
    assert (response.reasoning, response.content) == ("six times seven", "The answer <b>is</b> 42")
    plain = await model.chat(USER)
    assert (plain.reasoning, plain.content) == ("six times seven", "The answer <b>is</b> 42")


def test_think_splitter_keeps_order_and_text_that_only_looks_like_a_tag() -> None:
    splitter = _ThinkSplitter()
    pieces = [*splitter.feed("a <thi"), *splitter.feed("nk>x</th"), *splitter.feed("ink>\n b <th"),
              *splitter.feed("e end"), *splitter.flush()]
    assert pieces == [(False, "a "), (True, "x"), (False, "b "), (False, "<the end")]
    unfinished = _ThinkSplitter()
    assert [*unfinished.feed("<think>still thinking"), *unfinished.flush()] == [(True, "still thinking")]


async def test_options_become_request_fields(server: ScriptedModelServer, model: OpenAIChatModel) -> None:
    schema = {"title": "Answer form", "type": "object", "properties": {"a": {"type": "integer"}}}
    options = GenerationOptions(temperature=0.2, top_p=0.9, max_tokens=50, presence_penalty=0.1,
                                frequency_penalty=0.3, json_schema=schema, tool_choice="required",
                                extra={"chat_template_kwargs": {"enable_thinking": False}})
    await model.chat(USER, tools=TOOLS, options=options)
    sent = server.last_request
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.2, 0.9, 50)
    assert (sent["presence_penalty"], sent["frequency_penalty"]) == (0.1, 0.3)
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "Answer_form", "schema": schema}}
    assert sent["tool_choice"] == "required"
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    await model.chat(USER)
    assert not {"temperature", "response_format", "tool_choice", "tools"} & set(server.last_request)


async def test_dropped_options_are_never_sent(server: ScriptedModelServer) -> None:
    model = OpenAIChatModel("m", base_url=server.base_url, drop_options=["temperature"])
    await model.chat(USER, options=GenerationOptions(temperature=0.5, top_p=0.5))
    assert "temperature" not in server.last_request and server.last_request["top_p"] == 0.5
    await model.aclose()


# ---------------------------------------------------------------------------- errors
async def test_refused_credentials(server: ScriptedModelServer) -> None:
    server.api_key = "the-right-key"
    model = OpenAIChatModel("scripted-model", base_url=server.base_url, api_key="sk-wrong-key-5678", retry=FAST,
                            auth_hint="check the environment variable DEEPSEEK_API_KEY")
    with pytest.raises(ModelAuthError) as caught:
        await model.chat(USER)
    message = str(caught.value)
    assert server.base_url in message and "'scripted-model'" in message and "HTTP 401" in message
    assert "DEEPSEEK_API_KEY" in message and "sk-wrong-key-5678" not in message
    assert len(server.requests) == 1  # never retried
    await model.aclose()


async def test_a_provider_message_quoting_the_key_is_scrubbed(server: ScriptedModelServer,
                                                             model: OpenAIChatModel) -> None:
    server.add(Rule(Reply.fail(403, "key sk-test-1234 may not use this model")))
    with pytest.raises(ModelAuthError, match=r"key \*\*\* may not") as caught:
        await model.chat(USER)
    assert "sk-test-1234" not in str(caught.value)


async def test_rate_limit_is_retried_with_backoff_then_succeeds(server: ScriptedModelServer,
                                                                model: OpenAIChatModel) -> None:
    server.add(Rule(Reply.fail(429), times=2))
    server.add(Rule("finally"))
    assert (await model.chat(USER)).content == "finally"
    assert len(server.requests) == 3
    _, response = await collect(model)  # opening a stream is retried the same way
    assert response.content == "finally"


async def test_rate_limit_gives_up_after_max_retries(server: ScriptedModelServer, model: OpenAIChatModel) -> None:
    server.add(Rule(Reply.fail(429, "Rate limit reached for requests")))
    with pytest.raises(ModelRateLimited) as caught:
        await model.chat(USER)
    assert "rate limited (HTTP 429): Rate limit reached" in str(caught.value)
    assert "gave up after 3 attempts" in str(caught.value)
    assert len(server.requests) == 3


async def test_retry_after_header_is_read(server: ScriptedModelServer) -> None:
    server.add(Rule(Reply.fail(429, headers={"Retry-After": "7"})))
    model = OpenAIChatModel("m", base_url=server.base_url, retry=RetryPolicy(max_retries=0))
    with pytest.raises(ModelRateLimited) as caught:
        await model.chat(USER)
    assert caught.value.retry_after == 7.0
    await model.aclose()


async def test_context_overflow_is_not_retried(server: ScriptedModelServer, model: OpenAIChatModel) -> None:
    server.add(Rule(Reply.context_overflow(8192)))
    with pytest.raises(ContextTooLong, match=r"does not fit the model's context window.*maximum context length"):
        await model.chat(USER)
    with pytest.raises(ContextTooLong):
        await collect(model)
    assert len(server.requests) == 2


async def test_vllm_style_context_overflow_without_code(server: ScriptedModelServer, model: OpenAIChatModel) -> None:
    server.add(Rule(Reply.fail(400, "This model's maximum context length is 4096 tokens. However, you requested "
                                    "5000 tokens", code="")))
    with pytest.raises(ContextTooLong):
        await model.chat(USER)


async def test_server_errors_are_retried_then_unavailable(server: ScriptedModelServer,
                                                          model: OpenAIChatModel) -> None:
    server.add(Rule(Reply.fail(500, "engine exploded")))
    with pytest.raises(ModelUnavailable, match=r"server failed \(HTTP 500\): engine exploded") as caught:
        await model.chat(USER)
    assert server.base_url in str(caught.value)
    assert len(server.requests) == 3


async def test_other_refusals_are_plain_model_errors(server: ScriptedModelServer, model: OpenAIChatModel) -> None:
    server.add(Rule(Reply.fail(404), times=1))
    server.add(Rule(Reply.fail(422, "bad field")))
    with pytest.raises(ModelError, match=r"not found.*/v1") as not_found:
        await model.chat(USER)
    with pytest.raises(ModelError, match=r"refused \(HTTP 422\): bad field") as refused:
        await model.chat(USER)
    assert not isinstance(not_found.value, ModelUnavailable) and not isinstance(refused.value, ModelUnavailable)
    assert len(server.requests) == 2


async def test_unreachable_endpoint_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAIChatModel("m", base_url=f"http://127.0.0.1:{port}/v1", retry=RetryPolicy(max_retries=1, delay=0))
    with pytest.raises(ModelUnavailable, match=f"127.0.0.1:{port}/v1.*cannot connect"):
        await model.chat(USER)
    await model.aclose()


async def test_a_slow_endpoint_times_out(server: ScriptedModelServer) -> None:
    server.add(Rule(Reply(text="too late", delay=2)))
    model = OpenAIChatModel("m", base_url=server.base_url, timeout=0.3, retry=RetryPolicy(max_retries=0))
    with pytest.raises(ModelUnavailable, match=r"no answer within 0\.3 seconds"):
        await model.chat(USER)
    await model.aclose()


# ---------------------------------------------------------------------------- cancellation
async def test_cancelling_the_consumer_closes_the_stream(server: ScriptedModelServer,
                                                         model: OpenAIChatModel) -> None:
    server.add(Rule(Reply(text="word " * 500, chunk_delay=0.02)))
    first = asyncio.Event()
    received: list[str] = []

    async def consume() -> None:
        async for chunk in model.stream(USER):
            received.append(chunk.content)
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(server.wait_for_disconnect, 1, 5)
    assert 0 < len(received) < 500


async def test_leaving_the_iteration_early_closes_the_stream(server: ScriptedModelServer,
                                                             model: OpenAIChatModel) -> None:
    server.add(Rule(Reply(text="word " * 500, chunk_delay=0.02)))
    async with aclosing(model.stream(USER)) as stream:
        async for _ in stream:
            break
    assert await asyncio.to_thread(server.wait_for_disconnect, 1, 5)
