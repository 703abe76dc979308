"""The chat-model protocol every provider implements, and the values it exchanges.

Messages are OpenAI-style dicts (``{"role", "content", "tool_calls"?, "tool_call_id"?}``);
content may be a string or a list of parts (text / image_url) for vision. A provider turns
these into its own API and back, reports usage, and raises :mod:`taskcanvas.llm.errors`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]


@dataclass(frozen=True)
class GenerationOptions:
    """Sampling and output options; ``None`` means "the provider's default" (not sent)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    json_schema: Mapping[str, Any] | None = None
    """Ask for structured output following this JSON schema (where the provider supports it)."""
    tool_choice: str | None = None
    """``"auto"`` (default when tools are given), ``"none"`` or ``"required"``."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Provider-specific request fields passed through (e.g. ``chat_template_kwargs``)."""


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is the raw JSON text it produced."""

    id: str
    name: str
    arguments: str


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class ChatResponse:
    """A whole answer: text, reasoning ("think") text, tool calls, usage."""

    content: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None


@dataclass
class ChatChunk:
    """A piece of a streamed answer. The last chunk of a stream carries ``done=True`` with the
    whole :class:`ChatResponse` (assembled tool calls and usage)."""

    content: str = ""
    reasoning: str = ""
    done: bool = False
    response: ChatResponse | None = None


class ChatModel(Protocol):
    """One configured model of one provider."""

    @property
    def name(self) -> str:
        """The model name sent to the provider."""
        ...

    async def chat(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
                   options: GenerationOptions | None = None) -> ChatResponse:
        """One answer; tool calls are returned, not executed."""
        ...

    def stream(self, messages: Sequence[Message], *, tools: Sequence[Mapping[str, Any]] | None = None,
               options: GenerationOptions | None = None) -> AsyncGenerator[ChatChunk, None]:
        """The answer as it is produced; cancelling the iteration cancels the request."""
        ...


class ModelProvider(Protocol):
    """Finds the model for a ragflow ``llm_id``."""

    def get(self, llm_id: str) -> ChatModel:
        """The model serving ``llm_id``; raises ``ModelNotConfigured`` naming it and how to configure it."""
        ...

    def serves(self, llm_id: str) -> bool:
        ...
