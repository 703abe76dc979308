"""The tool contract (spec §5.1): a component that is also a function an Agent's model can call.

A :class:`Tool` declares ragflow's ``meta`` — its function name, description and parameters —
which becomes the JSON schema the model sees (:meth:`Tool.function_schema`). The same class
runs as a canvas component (arguments from its params, references resolved) and as an Agent
tool (arguments from the model): both end in :meth:`Tool.call`, which does the work, writes
the outputs and returns what the model is told.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, TypedDict

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.references import hash_str2int
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import string_format

__all__ = ["Tool", "ToolMeta", "ToolParams", "chunk_id", "format_chunks", "hash_str2int"]

_DATA_IMAGE = re.compile(r"!?\[[a-z]+\]\(data:image/png;base64,[ 0-9A-Za-z/_=+-]+\)")


class ToolParameter(TypedDict, total=False):
    type: str
    description: str
    default: Any
    enum: list[str]
    items: dict[str, Any]
    required: bool


class ToolMeta(TypedDict):
    name: str
    description: str
    parameters: dict[str, ToolParameter]


class ToolParams(ComponentParams):
    """Every tool's params: the meta parameters are fields of the subclass, with their defaults."""

    function_name: str | None = None
    """The name the model calls it by (an Agent sets ``<meta name>_<index>``)."""


def chunk_id(content: str) -> str:
    return str(hash_str2int(content))


def _node(key: str, value: Any) -> str:
    if value is not None and not isinstance(value, str):
        value = str(value)
    if not value:
        return ""
    return f"\n├── {key}: " + re.sub(r"\n+", " ", value)


def format_chunks(chunks: Sequence[Mapping[str, Any]]) -> str:
    """Chunks as the model reads them (ragflow's ``kb_prompt`` with hashed ids)."""
    parts = []
    for ck in chunks:
        cid = str(ck.get("id") or ck.get("chunk_id") or "")
        text = f"\nID: {hash_str2int(cid, 500)}"
        text += _node("Title", ck.get("docnm_kwd") or ck.get("document_name"))
        text += _node("URL", ck.get("url", ""))
        for key, value in (ck.get("document_metadata") or {}).items():
            text += _node(key, value)
        text += "\n└── Content:\n"
        text += str(ck.get("content") or ck.get("content_with_weight") or "")
        parts.append(text)
    return "\n".join(parts)


class Tool(Component):
    """Base class of every tool."""

    meta: ClassVar[ToolMeta]
    Params = ToolParams
    timeout = 12.0
    # ragflow's ToolBase records every failure as the component's error, exception handling or not.
    default_on_error = False

    def thoughts(self, state: RunState) -> str:
        return f"{self.spec.name or self.id} is running..."

    def function_name(self) -> str:
        params = self.params
        assert isinstance(params, ToolParams)
        return params.function_name or self.meta["name"]

    def function_schema(self) -> dict[str, Any]:
        """The OpenAI function schema the model sees (ragflow's ``get_meta``)."""
        properties: dict[str, Any] = {}
        for name, p in self.meta["parameters"].items():
            prop: dict[str, Any] = {"type": p.get("type", "string"), "description": p.get("description", "")}
            if "enum" in p:
                prop["enum"] = p["enum"]
            if "items" in p:
                prop["items"] = p["items"]
            properties[name] = prop
        return {
            "type": "function",
            "function": {
                "name": self.function_name(),
                "description": self.params.description or self.meta["description"],
                "parameters": {
                    "type": "object",
                    "properties": properties,
                    "required": [n for n, p in self.meta["parameters"].items() if p.get("required")],
                },
            },
        }

    async def call(self, ctx: RunContext, **args: Any) -> Any:
        """Do the work with ``args`` (the meta parameters); write outputs; return the model's result."""
        raise NotImplementedError

    # ------------------------------------------------------------------ as a canvas component
    async def invoke(self, ctx: RunContext) -> None:
        await self.call(ctx, **self.node_arguments(ctx.state))

    def node_arguments(self, state: RunState) -> dict[str, Any]:
        """The meta parameters from this node's params, references resolved (spec §2.4 mode A)."""
        args: dict[str, Any] = {}
        for name in self.meta["parameters"]:
            value = getattr(self.params, name, None)
            if value is None:
                continue
            if isinstance(value, str) and state.is_ref(value):
                value = state.get_variable_value(value)
            elif isinstance(value, str) and "{" in value:
                refs = self.text_refs_of(value)
                if refs:
                    value = string_format(value, {k: _text(state.get_variable_value(t)) for k, t in refs.items()})
            if isinstance(value, TextStream):
                value = value.text
            state.set_input(self.id, name, value)
            args[name] = value
        return args

    # ------------------------------------------------------------------ as an Agent's tool
    async def call_for_model(self, ctx: RunContext, args: Mapping[str, Any]) -> Any:
        """Run for a model's tool call: retries as configured; a failure is the result, as text."""
        state = ctx.state
        params = self.params
        started = time.perf_counter()
        state.set_output(self.id, "_created_time", started)
        result: Any = None
        for attempt in range(params.max_retries + 1):
            # A tool may record a failure itself and still return what the model should read.
            state.set_output(self.id, "_ERROR", "")
            try:
                result = await self.call(ctx, **dict(args))
                break
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if attempt < params.max_retries:
                    await asyncio.sleep(params.delay_after_error)
                    continue
                state.set_output(self.id, "_ERROR", str(e))
                result = str(e) or type(e).__name__
        state.set_output(self.id, "_elapsed_time", time.perf_counter() - started)
        return result

    # ------------------------------------------------------------------ helpers for tools
    def add_chunks(self, state: RunState, items: Sequence[Any], *, title: Any, url: Any, content: Any,
                   score: Any = None) -> list[dict[str, Any]]:
        """Search results as reference chunks and ``formalized_content`` (ragflow's ``_retrieve_chunks``)."""
        chunks: list[dict[str, Any]] = []
        aggs: list[dict[str, Any]] = []
        for item in items:
            text = content(item)
            if not text:
                continue
            text = _DATA_IMAGE.sub("", str(text))[:10000]
            if not text:
                continue
            cid = chunk_id(text)
            name, link = title(item), url(item)
            chunks.append({"chunk_id": cid, "content": text, "doc_id": cid, "docnm_kwd": name,
                           "similarity": score(item) if score else 1, "url": link})
            aggs.append({"doc_name": name, "doc_id": cid, "count": 1, "url": link})
        state.add_reference(chunks, aggs)
        state.set_output(self.id, "formalized_content", format_chunks(chunks))
        return chunks


def _text(value: Any) -> Any:
    return value.text if isinstance(value, TextStream) else value
