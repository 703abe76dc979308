"""Chat models of Anthropic's Messages API, through ``anthropic.AsyncAnthropic``.

Canvas code speaks OpenAI-style messages and tool schemas (ragflow does, and so does
:mod:`taskcanvas.llm.protocol`); this module translates both ways so that components never
see the difference:

- system messages → the ``system`` parameter (joined by blank lines, wherever they stood);
- an assistant's ``tool_calls`` → ``tool_use`` blocks; ``role: tool`` results → ``tool_result``
  blocks in a user turn; consecutive turns of one role are merged, as the API wants them
  alternating;
- ``image_url`` parts (data URIs or URLs) → ``image`` blocks;
- OpenAI function tools → ``{name, description, input_schema}``; ``tool_choice``
  ``auto`` / ``required`` / ``none`` → ``auto`` / ``any`` / ``none``;
- answers back: text → ``content``, thinking → ``reasoning``, ``tool_use`` → :class:`ToolCall`
  with JSON ``arguments``; stop reasons in OpenAI's words (``stop``, ``tool_calls``, ``length``).

``max_tokens`` is required by the API: 4096 unless the options say otherwise. The SDK has no
``temperature``/``top_p`` parameters any more, so they go in the request body when set;
presence/frequency penalties have no Anthropic equivalent and are not sent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic

from taskcanvas.llm.errors import ContextTooLong, ModelAuthError, ModelError, ModelRateLimited, ModelUnavailable
from taskcanvas.llm.protocol import ChatChunk, ChatResponse, GenerationOptions, Message, ToolCall, Usage
from taskcanvas.llm.retry import RetryPolicy, with_retries

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MAX_TOKENS = 4096
_STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
                 "refusal": "content_filter", "model_context_window_exceeded": "length"}
_CONTEXT_WORDS = ("prompt is too long", "context window", "context length", "too many tokens")
_TOOL_CHOICE = {"auto": {"type": "auto"}, "required": {"type": "any"}, "any": {"type": "any"},
                "none": {"type": "none"}}
_NO_KEY = "not-configured"
"""Sent when no key is configured; the SDK would otherwise search the environment and disk."""


class AnthropicChatModel:
    """One Anthropic model; implements :class:`~taskcanvas.llm.protocol.ChatModel`.

    Use it inside one event loop (the HTTP connection pool belongs to it); :meth:`aclose`
    releases the connections.
    """

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 600.0, retry: RetryPolicy | None = None, drop_options: Collection[str] = (),
                 auth_hint: str = "", max_length: int = 0) -> None:
        self._model = model
        self.max_length = max_length
        """The model's context window in tokens, when configured (0: unknown); prompts are fitted to it."""
        self._base_url = base_url or DEFAULT_BASE_URL
        self._api_key = api_key
        self._timeout = timeout
        self._retry = retry or RetryPolicy()
        self._drop = frozenset(drop_options)
        self._auth_hint = auth_hint
        self._where = f"Anthropic API {self._base_url}, model {model!r}"
        self._client = anthropic.AsyncAnthropic(api_key=api_key or _NO_KEY, base_url=self._base_url,
                                                timeout=timeout, max_retries=0)

    def __repr__(self) -> str:
        return f"AnthropicChatModel(model={self._model!r}, base_url={self._base_url!r})"

    @property
    def name(self) -> str:
        return self._model

    async def aclose(self) -> None:
        await self._client.close()

    async def chat(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
                   options: GenerationOptions | None = None) -> ChatResponse:
        request = self._request(messages, tools, options)
        message = await with_retries(lambda: self._create(request), self._retry)
        return _response(message)

    async def stream(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
                     options: GenerationOptions | None = None) -> AsyncGenerator[ChatChunk, None]:
        request = {**self._request(messages, tools, options), "stream": True}
        # Retried only while opening: once text has been handed out, a retry would repeat it.
        sdk_stream = await with_retries(lambda: self._create(request), self._retry)
        assembly = _StreamAssembly()
        async with sdk_stream:  # closes the HTTP response on cancel, error or an abandoned iteration
            try:
                async for event in sdk_stream:
                    chunk = assembly.feed(event)
                    if chunk is not None:
                        yield chunk
            except anthropic.AnthropicError as e:
                raise self._error(e) from e
        yield ChatChunk(done=True, response=assembly.response())

    # ------------------------------------------------------------------ request and errors
    def _request(self, messages: Sequence[Message], tools: Sequence[Mapping[str, Any]] | None,
                 options: GenerationOptions | None) -> dict[str, Any]:
        opts = options or GenerationOptions()
        system, turns = to_anthropic_messages(messages)
        request: dict[str, Any] = {"model": self._model, "messages": turns,
                                   "max_tokens": opts.max_tokens or DEFAULT_MAX_TOKENS}
        if system:
            request["system"] = system
        if tools:
            request["tools"] = [to_anthropic_tool(t) for t in tools]
            if opts.tool_choice:
                request["tool_choice"] = _TOOL_CHOICE.get(opts.tool_choice, {"type": "tool",
                                                                               "name": opts.tool_choice})
        if opts.json_schema is not None:
            request["output_config"] = {"format": {"type": "json_schema", "schema": dict(opts.json_schema)}}
        body: dict[str, Any] = {}
        for name in ("temperature", "top_p"):
            value = getattr(opts, name)
            if value is not None and name not in self._drop:
                body[name] = value
        body.update(opts.extra)
        _thinking(body, request)
        if body:
            request["extra_body"] = body
        return request

    async def _create(self, request: dict[str, Any]) -> Any:
        try:
            return await self._client.messages.create(**request)
        except anthropic.AnthropicError as e:
            raise self._error(e) from e

    def _error(self, e: anthropic.AnthropicError) -> ModelError:
        """The taskcanvas error for an SDK error, worded for the person who configured the model."""
        where = self._where
        if isinstance(e, anthropic.APITimeoutError):
            return ModelUnavailable(f"{where}: no answer within {self._timeout:g} seconds")
        if isinstance(e, anthropic.APIConnectionError):
            cause = e.__cause__ or e.__context__
            return ModelUnavailable(f"{where}: cannot connect ({_scrub(str(cause or e), self._api_key)})")
        if isinstance(e, anthropic.APIStatusError):
            kind: str = e.type or ""
            text = _scrub(e.api_message or e.message, self._api_key)
            status = e.status_code
            label = f"HTTP {status}" if status != 200 else kind or "error in the stream"
            err: ModelError
            if status in (401, 403) or kind in ("authentication_error", "permission_error"):
                hint = f"; {self._auth_hint}" if self._auth_hint else ""
                err = ModelAuthError(f"{where}: the credentials were refused ({label}): {text}{hint}")
            elif status == 429 or kind == "rate_limit_error":
                err = ModelRateLimited(f"{where}: rate limited ({label}): {text}")
                err.retry_after = _retry_after(e.response.headers) if status == 429 else None
            elif status == 413 or kind == "request_too_large" or (
                    status == 400 and any(w in text.lower() for w in _CONTEXT_WORDS)):
                err = ContextTooLong(f"{where}: the prompt does not fit the model's context window: {text}")
            elif status >= 500 or status == 408 or kind in ("overloaded_error", "api_error", "timeout_error"):
                err = ModelUnavailable(f"{where}: the server failed ({label}): {text}")
            elif status == 404:
                err = ModelError(f"{where}: not found (HTTP 404): {text} (check the model name)")
            else:
                err = ModelError(f"{where}: the request was refused ({label}): {text}")
            return err
        return ModelError(f"{where}: {_scrub(str(e), self._api_key)}")


def _thinking(body: dict[str, Any], request: dict[str, Any]) -> None:
    """Make a canvas's ``thinking`` switch (``"enabled"``/``"disabled"``, a bool) the object the API wants.

    Extended thinking needs a token budget below ``max_tokens`` and refuses sampling options,
    so those are adjusted rather than failing the call.
    """
    value = body.get("thinking")
    if value is None:
        return
    if not isinstance(value, Mapping):
        word = str(value).strip().lower()
        if word in ("enabled", "enable", "on", "true", "1"):
            value = {"type": "enabled", "budget_tokens": max(1024, request["max_tokens"] // 2)}
        elif word in ("disabled", "disable", "off", "false", "0"):
            value = {"type": "disabled"}
        else:
            return  # unknown: sent as given, so the API's own message says what is wrong
        body["thinking"] = value
    if value.get("type") == "enabled":
        budget = int(value.get("budget_tokens") or 0)
        if budget >= request["max_tokens"]:
            request["max_tokens"] = budget + DEFAULT_MAX_TOKENS
        body.pop("temperature", None)
        body.pop("top_p", None)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


# ---------------------------------------------------------------------------- OpenAI shapes → Anthropic
def to_anthropic_messages(messages: Sequence[Message]) -> tuple[str, list[dict[str, Any]]]:
    """``(system, messages)`` for the Messages API from OpenAI-style messages."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = _plain_text(message.get("content"))
            if text:
                system.append(text)
        elif role == "tool":
            _append(turns, "user", [{"type": "tool_result", "tool_use_id": str(message.get("tool_call_id") or ""),
                                     "content": _tool_result(message.get("content"))}])
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append({"type": "tool_use", "id": str(call.get("id") or ""),
                               "name": str(function.get("name") or ""),
                               "input": _arguments(function.get("arguments"))})
            _append(turns, "assistant", blocks)
        else:
            _append(turns, "user", _blocks(message.get("content")))
    return "\n\n".join(system), turns


def to_anthropic_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI function tool as an Anthropic tool (Anthropic-shaped tools pass through)."""
    if "input_schema" in tool:
        return dict(tool)
    function = tool.get("function", tool)
    converted: dict[str, Any] = {"name": function["name"],
                                 "input_schema": function.get("parameters") or {"type": "object", "properties": {}}}
    if function.get("description"):
        converted["description"] = function["description"]
    return converted


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if not blocks:
        return  # the API refuses empty turns
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else [content]:
        if isinstance(part, str):
            if part:
                blocks.append({"type": "text", "text": part})
        elif not isinstance(part, Mapping):
            blocks.append({"type": "text", "text": json.dumps(part)})
        elif part.get("type") == "text":
            if part.get("text"):
                blocks.append({"type": "text", "text": str(part["text"])})
        elif part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            blocks.append(_image(str(url or "")))
        else:
            blocks.append(dict(part))  # already an Anthropic block (image, document, ...)
    return blocks


def _image(url: str) -> dict[str, Any]:
    if url.startswith("data:") and ";base64," in url:
        header, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": header or "image/png", "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _tool_result(content: Any) -> str | list[dict[str, Any]]:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return _blocks(content)
    return json.dumps(content, ensure_ascii=False)


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return ""


def _arguments(arguments: Any) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Anthropic wants; text that is not one is kept."""
    if isinstance(arguments, Mapping):
        return dict(arguments)
    if not arguments:
        return {}
    try:
        value = json.loads(arguments)
    except (TypeError, ValueError):
        return {"arguments": str(arguments)}
    return value if isinstance(value, dict) else {"arguments": value}


# ---------------------------------------------------------------------------- answers
def _response(message: Any) -> ChatResponse:
    content: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            content.append(block.text)
        elif block.type == "thinking":
            reasoning.append(block.thinking)
        elif block.type == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
    return ChatResponse(content="".join(content), reasoning="".join(reasoning), tool_calls=calls,
                        usage=Usage(prompt_tokens=_input_tokens(message.usage),
                                    completion_tokens=message.usage.output_tokens or 0),
                        finish_reason=_finish_reason(message.stop_reason))


def _input_tokens(usage: Any) -> int:
    """All prompt tokens: fresh, written to and read from the prompt cache."""
    return sum(getattr(usage, name, None) or 0
               for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))


def _finish_reason(stop_reason: str | None) -> str | None:
    return _STOP_REASONS.get(stop_reason, stop_reason) if stop_reason else None


@dataclass
class _ToolUse:
    id: str
    name: str
    initial: Any = None
    parts: list[str] = field(default_factory=list)


class _StreamAssembly:
    """Turns Messages API stream events into :class:`ChatChunk` values and remembers the whole answer."""

    def __init__(self) -> None:
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._tools: dict[int, _ToolUse] = {}
        self._usage = Usage()
        self._finish_reason: str | None = None

    def feed(self, event: Any) -> ChatChunk | None:
        kind = event.type
        if kind == "message_start":
            self._usage.prompt_tokens = _input_tokens(event.message.usage)
            self._usage.completion_tokens = event.message.usage.output_tokens or 0
        elif kind == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                self._tools[event.index] = _ToolUse(id=block.id, name=block.name, initial=block.input)
            elif block.type == "text" and block.text:
                return self._text(block.text)
            elif block.type == "thinking" and block.thinking:
                return self._think(block.thinking)
        elif kind == "content_block_delta":
            delta = event.delta
            if delta.type == "text_delta":
                return self._text(delta.text)
            if delta.type == "thinking_delta":
                return self._think(delta.thinking)
            if delta.type == "input_json_delta" and event.index in self._tools:
                self._tools[event.index].parts.append(delta.partial_json)
        elif kind == "message_delta":
            self._finish_reason = _finish_reason(event.delta.stop_reason) or self._finish_reason
            usage = event.usage
            if usage.output_tokens is not None:
                self._usage.completion_tokens = usage.output_tokens
            if usage.input_tokens is not None:
                self._usage.prompt_tokens = _input_tokens(usage)
        return None

    def response(self) -> ChatResponse:
        calls = [ToolCall(id=t.id, name=t.name, arguments="".join(t.parts) or json.dumps(t.initial or {}))
                 for _, t in sorted(self._tools.items())]
        return ChatResponse(content="".join(self._content), reasoning="".join(self._reasoning), tool_calls=calls,
                            usage=self._usage, finish_reason=self._finish_reason)

    def _text(self, text: str) -> ChatChunk | None:
        if not text:
            return None
        self._content.append(text)
        return ChatChunk(content=text)

    def _think(self, text: str) -> ChatChunk | None:
        if not text:
            return None
        self._reasoning.append(text)
        return ChatChunk(reasoning=text)
