"""Chat models behind any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, DeepSeek, ...).

One :class:`OpenAIChatModel` per configured model, talking through ``openai.AsyncOpenAI``.
The SDK's own retries are off (``max_retries=0``) so that :mod:`taskcanvas.llm.retry` applies
one policy to every provider. Reasoning ("think") text arrives two ways and both end up in
``reasoning``: a separate ``reasoning_content`` (or ``reasoning``) field, as DeepSeek and vLLM
send it, or inline ``<think>...</think>`` in the content, as R1-style models served raw do.
Errors become :mod:`taskcanvas.llm.errors` whose message names the endpoint and the model,
never the key.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from taskcanvas.llm.errors import ContextTooLong, ModelAuthError, ModelError, ModelRateLimited, ModelUnavailable
from taskcanvas.llm.protocol import ChatChunk, ChatResponse, GenerationOptions, Message, ToolCall, Usage
from taskcanvas.llm.retry import RetryPolicy, with_retries

_SAMPLING = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty")
_CONTEXT_WORDS = ("context_length_exceeded", "maximum context length", "context length", "context window",
                  "too many tokens", "prompt is too long")
_NO_KEY = "EMPTY"
"""Sent when no key is configured: local servers (vLLM, Ollama) accept anything, and the SDK
would otherwise look for ``OPENAI_API_KEY`` in the environment itself."""


class OpenAIChatModel:
    """One model of an OpenAI-compatible endpoint; implements :class:`~taskcanvas.llm.protocol.ChatModel`.

    Use it inside one event loop (the HTTP connection pool belongs to it); :meth:`aclose`
    releases the connections.
    """

    def __init__(self, model: str, *, base_url: str, api_key: str | None = None, timeout: float = 600.0,
                 retry: RetryPolicy | None = None, drop_options: Collection[str] = (),
                 auth_hint: str = "", provider: str = "OpenAI-compatible endpoint", max_length: int = 0) -> None:
        self._model = model
        self.max_length = max_length
        """The model's context window in tokens, when configured (0: unknown); prompts are fitted to it."""
        self._base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._drop = frozenset(drop_options)
        self._auth_hint = auth_hint
        self._where = f"{provider} {base_url}, model {model!r}"
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key or _NO_KEY, timeout=timeout,
                                          max_retries=0)

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self._model!r}, base_url={self._base_url!r})"

    @property
    def name(self) -> str:
        return self._model

    async def aclose(self) -> None:
        await self._client.close()

    async def chat(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
                   options: GenerationOptions | None = None) -> ChatResponse:
        request = self._request(messages, tools, options, stream=False)
        completion: ChatCompletion = await with_retries(lambda: self._create(request), self._retry)
        return _response(completion)

    async def stream(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
                     options: GenerationOptions | None = None) -> AsyncGenerator[ChatChunk, None]:
        request = self._request(messages, tools, options, stream=True)
        # Retried only while opening: once text has been handed out, a retry would repeat it.
        sdk_stream: openai.AsyncStream[ChatCompletionChunk] = await with_retries(
            lambda: self._create(request), self._retry)
        assembly = _StreamAssembly()
        async with sdk_stream:  # closes the HTTP response on cancel, error or an abandoned iteration
            try:
                async for event in sdk_stream:
                    for chunk in assembly.feed(event):
                        yield chunk
            except openai.OpenAIError as e:
                raise self._error(e) from e
        for chunk in assembly.flush():
            yield chunk
        yield ChatChunk(done=True, response=assembly.response())

    # ------------------------------------------------------------------ request and errors
    def _request(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] | None,
                 options: GenerationOptions | None, *, stream: bool) -> dict[str, Any]:
        opts = options or GenerationOptions()
        request: dict[str, Any] = {"model": self._model, "messages": [dict(m) for m in messages]}
        for name in _SAMPLING:
            value = getattr(opts, name)
            if value is not None and name not in self._drop:
                request[name] = value
        if tools:
            request["tools"] = [dict(t) for t in tools]
            if opts.tool_choice:
                request["tool_choice"] = opts.tool_choice
        if opts.json_schema is not None:
            request["response_format"] = {"type": "json_schema", "json_schema": {
                "name": _schema_name(opts.json_schema), "schema": dict(opts.json_schema)}}
        if opts.extra:
            request["extra_body"] = dict(opts.extra)
        if stream:
            request["stream"] = True
            request["stream_options"] = {"include_usage": True}
        return request

    async def _create(self, request: dict[str, Any]) -> Any:
        try:
            return await self._client.chat.completions.create(**request)
        except openai.OpenAIError as e:
            raise self._error(e) from e

    def _error(self, e: openai.OpenAIError) -> ModelError:
        """The taskcanvas error for an SDK error, worded for the person who configured the model."""
        where = self._where
        if isinstance(e, openai.APITimeoutError):
            return ModelUnavailable(f"{where}: no answer within {self._timeout:g} seconds")
        if isinstance(e, openai.APIConnectionError):
            cause = e.__cause__ or e.__context__
            return ModelUnavailable(f"{where}: cannot connect ({_scrub(str(cause or e), self._api_key)})")
        if isinstance(e, openai.APIStatusError):
            status = e.status_code
            text = _scrub(_status_message(e), self._api_key)
            err: ModelError
            if isinstance(e, (openai.AuthenticationError, openai.PermissionDeniedError)):
                hint = f"; {self._auth_hint}" if self._auth_hint else ""
                err = ModelAuthError(f"{where}: the credentials were refused (HTTP {status}): {text}{hint}")
            elif isinstance(e, openai.RateLimitError):
                err = ModelRateLimited(f"{where}: rate limited (HTTP 429): {text}")
                err.retry_after = _retry_after(e.response.headers)
            elif status == 413 or (status == 400 and _is_context_overflow(e.code, text)):
                err = ContextTooLong(f"{where}: the prompt does not fit the model's context window: {text}")
            elif status >= 500 or status == 408:
                err = ModelUnavailable(f"{where}: the server failed (HTTP {status}): {text}")
            elif status == 404:
                err = ModelError(f"{where}: not found (HTTP 404): {text} (check the model name, and that the "
                                 f"base_url ends where the API starts, usually /v1)")
            else:
                err = ModelError(f"{where}: the request was refused (HTTP {status}): {text}")
            return err
        message = e.message if isinstance(e, openai.APIError) else str(e)
        return ModelError(f"{where}: {_scrub(message, self._api_key)}")


def _status_message(e: openai.APIStatusError) -> str:
    body = e.body
    if isinstance(body, Mapping):
        message = body.get("message")
        if isinstance(message, str) and message:
            return message
    return e.message


def _is_context_overflow(code: str | None, text: str) -> bool:
    lowered = text.lower()
    return code == "context_length_exceeded" or any(w in lowered for w in _CONTEXT_WORDS)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                return None  # an HTTP date: rare from model APIs, and our own backoff still applies
    return None


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def _schema_name(schema: Mapping[str, Any]) -> str:
    """OpenAI wants a name for the schema (``[a-zA-Z0-9_-]{1,64}``); the title serves when there is one."""
    title = re.sub(r"[^a-zA-Z0-9_-]+", "_", str(schema.get("title") or "")).strip("_")[:64]
    return title or "output"


# ---------------------------------------------------------------------------- answers
def _response(completion: ChatCompletion) -> ChatResponse:
    usage = _usage(completion.usage)
    if not completion.choices:
        return ChatResponse(usage=usage)
    choice = completion.choices[0]
    message = choice.message
    splitter = _ThinkSplitter()
    pieces = [*splitter.feed(message.content or ""), *splitter.flush()]
    content = "".join(text for is_reasoning, text in pieces if not is_reasoning)
    reasoning = _reasoning_field(message) + "".join(text for is_reasoning, text in pieces if is_reasoning)
    calls = []
    for i, call in enumerate(message.tool_calls or []):
        function = getattr(call, "function", None)
        if function is not None:
            calls.append(ToolCall(id=call.id or f"call_{i}", name=function.name,
                                  arguments=function.arguments or "{}"))
    return ChatResponse(content=content, reasoning=reasoning, tool_calls=calls, usage=usage,
                        finish_reason=choice.finish_reason)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(prompt_tokens=usage.prompt_tokens or 0, completion_tokens=usage.completion_tokens or 0)


def _reasoning_field(obj: Any) -> str:
    """``reasoning_content`` (DeepSeek, older vLLM) or ``reasoning`` (newer vLLM, OpenRouter)."""
    for name in ("reasoning_content", "reasoning"):
        value = getattr(obj, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


@dataclass
class _ToolCallParts:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _StreamAssembly:
    """Turns SDK stream events into :class:`ChatChunk` values and remembers the whole answer."""

    def __init__(self) -> None:
        self._splitter = _ThinkSplitter()
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _ToolCallParts] = {}
        self._usage = Usage()
        self._finish_reason: str | None = None

    def feed(self, event: ChatCompletionChunk) -> list[ChatChunk]:
        if event.usage is not None:
            self._usage = _usage(event.usage)
        chunks: list[ChatChunk] = []
        for choice in event.choices[:1]:
            delta = choice.delta
            reasoning = _reasoning_field(delta)
            if reasoning:
                chunks.append(self._chunk(True, reasoning))
            if delta.content:
                chunks.extend(self._chunk(r, t) for r, t in self._splitter.feed(delta.content))
            for call in delta.tool_calls or []:
                parts = self._calls.setdefault(call.index, _ToolCallParts())
                parts.id = call.id or parts.id
                if call.function is not None:
                    parts.name = call.function.name or parts.name
                    if call.function.arguments:
                        parts.arguments.append(call.function.arguments)
            if choice.finish_reason:
                self._finish_reason = choice.finish_reason
        return chunks

    def flush(self) -> list[ChatChunk]:
        return [self._chunk(r, t) for r, t in self._splitter.flush()]

    def response(self) -> ChatResponse:
        calls = [ToolCall(id=p.id or f"call_{i}", name=p.name, arguments="".join(p.arguments) or "{}")
                 for i, p in sorted(self._calls.items())]
        return ChatResponse(content="".join(self._content), reasoning="".join(self._reasoning), tool_calls=calls,
                            usage=self._usage, finish_reason=self._finish_reason)

    def _chunk(self, is_reasoning: bool, text: str) -> ChatChunk:
        if is_reasoning:
            self._reasoning.append(text)
            return ChatChunk(reasoning=text)
        self._content.append(text)
        return ChatChunk(content=text)


class _ThinkSplitter:
    """Separates inline ``<think>...</think>`` from answer text, across chunk boundaries.

    A tag split over two chunks (``"<thi"`` + ``"nk>"``) is held back until it is known to be
    one; whitespace right after ``</think>`` is dropped, as models put a blank line there.
    """

    _OPEN, _CLOSE = "<think>", "</think>"

    def __init__(self) -> None:
        self._inside = False
        self._pending = ""
        self._strip = False

    def feed(self, text: str) -> list[tuple[bool, str]]:
        """``(is_reasoning, text)`` pieces of ``text`` that are certain by now."""
        out: list[tuple[bool, str]] = []
        buf = self._pending + text
        self._pending = ""
        while buf:
            tag = self._CLOSE if self._inside else self._OPEN
            at = buf.find(tag)
            if at >= 0:
                self._emit(out, buf[:at])
                self._inside = not self._inside
                self._strip = not self._inside
                buf = buf[at + len(tag):]
                continue
            keep = _partial_tag(buf, tag)
            self._emit(out, buf[:len(buf) - keep])
            self._pending = buf[len(buf) - keep:]
            break
        return out

    def flush(self) -> list[tuple[bool, str]]:
        out: list[tuple[bool, str]] = []
        self._emit(out, self._pending)
        self._pending = ""
        return out

    def _emit(self, out: list[tuple[bool, str]], text: str) -> None:
        if not self._inside and self._strip:
            text = text.lstrip()
            if text:
                self._strip = False
        if text:
            out.append((self._inside, text))


def _partial_tag(text: str, tag: str) -> int:
    """Length of the longest end of ``text`` that is a beginning of ``tag``."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0

