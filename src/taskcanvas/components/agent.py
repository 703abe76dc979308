"""Agent: an LLM that calls tools in a loop until it can answer (spec §4.5).

Tools are components built inside the Agent (``<agent id>--><tool name>``), sub-agents are
Agents used as tools, and MCP tools come from configured MCP servers. Each round the model
may call several tools at once; they run concurrently and their results go back to the model.
A tool call that cannot run (unknown name, arguments that are not an object, a failing tool)
is reported to the model as the call's result instead of ending the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import json_repair

from taskcanvas.components import prompts
from taskcanvas.components.llm import (
    LLM,
    THINK_CLOSE,
    THINK_OPEN,
    LLMParams,
    Prompt,
    Thought,
    _max_length,
    add_usage,
    clean_json_answer,
    fit_messages,
    is_answer,
    stream_pieces,
)
from taskcanvas.dsl.errors import DslError, DslIssue
from taskcanvas.dsl.models import ComponentSpec
from taskcanvas.llm.errors import ModelError
from taskcanvas.llm.protocol import ChatModel, ChatResponse, GenerationOptions, Message, ToolCall
from taskcanvas.runtime.component import Component, RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.tools.base import format_chunks
from taskcanvas.tools.mcp import McpConnections, McpServers, function_schema

_AGENT_META = {
    "name": "agent",
    "description": "This is an agent for a specific task.",
    "parameters": {
        "user_prompt": {"type": "string", "description": "This is the order you need to send to the agent.",
                        "default": "", "required": True},
        "reasoning": {"type": "string", "required": True, "description": (
            "Supervisor's reasoning for choosing the this agent. Explain why this agent is being invoked and "
            "what is expected of it.")},
        "context": {"type": "string", "required": True, "description": (
            "All relevant background information, prior facts, decisions, and state needed by the agent to "
            "solve the current query. Should be as detailed and self-contained as possible.")},
    },
}


class AgentParams(LLMParams):
    tools: list[dict[str, Any]] = []
    mcp: list[dict[str, Any]] = []
    max_rounds: int = 5
    description: str | None = ""
    user_prompt: str | None = ""
    custom_header: dict[str, Any] | None = {}


class ModelTool(Protocol):
    """What the Agent needs of a tool: its schema for the model and a way to call it."""

    id: str

    def function_schema(self) -> dict[str, Any]: ...

    async def call_for_model(self, ctx: RunContext, args: Mapping[str, Any]) -> Any: ...


class _McpTool:
    """A tool of an MCP server, as the Agent offers it to the model (called through the
    run's MCP connections, see :meth:`Agent._tool_loop`)."""

    def __init__(self, mcp_id: str, name: str, meta: Mapping[str, Any], function_name: str) -> None:
        self.id = f"mcp:{mcp_id}:{name}"
        self.mcp_id = mcp_id
        self.name = name
        self.meta = meta
        self.function_name = function_name

    def function_schema(self) -> dict[str, Any]:
        return function_schema(self.meta, self.function_name)


class Agent(LLM):
    component_name = "Agent"
    Params = AgentParams
    timeout = 1200.0
    meta = _AGENT_META

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tools: dict[str, ModelTool | _McpTool] = {}

    def _params(self) -> AgentParams:
        params = self.params
        assert isinstance(params, AgentParams)
        return params

    # ------------------------------------------------------------------ building
    def attach(self, build: Callable[[ComponentSpec], Component]) -> list[DslIssue]:
        issues: list[DslIssue] = []
        params = self._params()
        for index, entry in enumerate(params.tools):
            name = str(entry.get("name") or entry.get("component_name") or f"tool{index}")
            spec = ComponentSpec(id=f"{self.id}-->{name.replace(' ', '_')}",
                                 component_name=str(entry.get("component_name", "")),
                                 params=dict(entry.get("params") or {}), name=name)
            try:
                tool = build(spec)
            except DslError as e:
                for issue in e.issues:
                    issues.append(DslIssue(issue.code, f"tool {name!r}: {issue.message}", self.id,
                                           f"params.tools[{index}]" + (f".{issue.field}" if issue.field else "")))
                continue
            issues.extend(tool.attach(build))
            if not callable(getattr(tool, "function_schema", None)):
                issues.append(DslIssue("not_a_tool", f"{spec.component_name} cannot be used as a tool",
                                       self.id, f"params.tools[{index}]"))
                continue
            model_tool: ModelTool = tool  # type: ignore[assignment]
            base = model_tool.function_schema()["function"]["name"]
            self.tools[f"{base}_{index}"] = model_tool
        index = len(self.tools)
        for server in params.mcp:
            for tool_name, meta in dict(server.get("tools") or {}).items():
                function_name = f"{tool_name}_{index}"
                index += 1
                self.tools[function_name] = _McpTool(str(server.get("mcp_id", "")), tool_name, meta or {},
                                                     function_name)
        return issues

    def model_ids(self) -> list[str]:
        ids = [self._params().llm_id]
        for tool in self.tools.values():
            if isinstance(tool, LLM):
                ids.extend(tool.model_ids())
        return ids

    def requirements(self, services: Mapping[str, Any]) -> list[DslIssue]:
        issues = super().requirements(services)
        for tool in self.tools.values():
            if isinstance(tool, Component) and not isinstance(tool, LLM):
                issues.extend(tool.requirements(services))
            elif isinstance(tool, Agent):
                issues.extend(i for i in tool.requirements(services) if i.field != "params.llm_id")
        servers = services.get("mcp")
        for mcp_id in dict.fromkeys(str(s.get("mcp_id", "")) for s in self._params().mcp):
            if not isinstance(servers, McpServers) or mcp_id not in servers:
                issues.append(DslIssue("no_mcp_server", f"uses MCP server {mcp_id!r}, which is not configured: add "
                                       f'[mcp_servers."{mcp_id}"] with its url to the configuration', self.id,
                                       "params.mcp"))
        return issues

    # ------------------------------------------------------------------ as a tool of another Agent
    def function_schema(self) -> dict[str, Any]:
        params = self._params()
        properties: dict[str, Any] = {}
        for name, p in _AGENT_META["parameters"].items():  # type: ignore[attr-defined]
            properties[name] = {"type": p["type"], "description": p["description"]}
        if params.user_prompt:
            properties["user_prompt"]["default"] = params.user_prompt
        return {"type": "function", "function": {
            "name": self.id.split("-->")[-1],
            "description": params.description or _AGENT_META["description"],
            "parameters": {"type": "object", "properties": properties,
                           "required": ["user_prompt", "reasoning", "context"]},
        }}

    async def call_for_model(self, ctx: RunContext, args: Mapping[str, Any]) -> Any:
        state = ctx.state
        state.set_output(self.id, "_created_time", time.perf_counter())
        user_prompt = args.get("user_prompt")
        override = None
        if user_prompt:
            text = ""
            if args.get("reasoning"):
                text += f"\nREASONING:\n{args['reasoning']}\n"
            if args.get("context"):
                text += f"\nCONTEXT:\n{args['context']}\n"
            text = text + f"\nQUERY:\n{user_prompt}\n" if text else str(user_prompt)
            override = [{"role": "user", "content": text}]
        try:
            await self._answer(ctx, override, stream=False)
        except Exception as e:
            state.set_output(self.id, "_ERROR", str(e))
        error = state.error(self.id)
        return error or state.output(self.id, "content")

    # ------------------------------------------------------------------ running
    async def invoke(self, ctx: RunContext) -> None:
        await self._answer(ctx, None, stream=True)

    async def _answer(self, ctx: RunContext, override: list[dict[str, Any]] | None, *, stream: bool) -> None:
        if not self.tools:
            if override is None:
                await super().invoke(ctx)
            else:
                await self._blocking_llm(ctx, override)
            return
        state = ctx.state
        params = self._params()
        prompt = await self.prompt(state, override)
        model = self.model(ctx)
        schema = self.output_schema()
        options = params.options()
        if stream and schema is None and self.streams_to_message():
            state.set_output(self.id, "content", TextStream(self._stream_with_tools(ctx, model, prompt, options)))
            return
        msgs, fit_error = fit_messages(prompt.system, prompt.messages, _max_length(model))
        if fit_error:
            self.failed(state, fit_error)
            return
        schema_prompt = ""
        if schema is not None:
            schema_prompt = prompts.structured_output_prompt(json.dumps(schema, ensure_ascii=False, indent=2))
            msgs[0]["content"] += "\n" + schema_prompt
        pieces = [p async for p in self._tool_loop(ctx, model, prompt.with_images(msgs), options, stream=False)]
        answer = "".join(p for p in pieces if is_answer(p))
        if "**ERROR**" in answer:
            self.failed(state, answer)
            return
        if schema is not None:
            await self._structured_answer(ctx, model, answer, schema_prompt)
            return
        artifacts = self._artifact_markdown(state, answer)
        if artifacts:
            answer += "\n\n" + artifacts
        state.set_output(self.id, "content", answer)

    async def _blocking_llm(self, ctx: RunContext, override: list[dict[str, Any]]) -> None:
        state = ctx.state
        params = self._params()
        prompt = await self.prompt(state, override)
        model = self.model(ctx)
        msgs, fit_error = fit_messages(prompt.system, prompt.messages, _max_length(model))
        if fit_error:
            self.failed(state, fit_error)
            return
        answer, error = await self.ask(ctx, model, prompt.with_images(msgs), params.options())
        if error:
            self.failed(state, error)
        else:
            state.set_output(self.id, "content", answer)

    async def _structured_answer(self, ctx: RunContext, model: ChatModel, answer: str, schema_prompt: str) -> None:
        state = ctx.state
        params = self._params()
        for _ in range(params.max_retries + 1):
            try:
                state.set_output(self.id, "structured", json_repair.loads(clean_json_answer(answer)))
                return
            except Exception:
                messages = [{"role": "system", "content": schema_prompt + prompts.FORCE_JSON},
                            {"role": "user", "content": answer}]
                answer, _ = await self.ask(ctx, model, messages, params.options())
        state.set_output(self.id, "_ERROR", "The answer cannot be parsed as JSON")

    async def _stream_with_tools(self, ctx: RunContext, model: ChatModel, prompt: Prompt,
                                 options: GenerationOptions) -> AsyncIterator[str]:
        state = ctx.state
        messages = list(prompt.messages)
        if len(messages) > 3:
            messages = [*messages[:-1], {"role": "user", "content": await self._full_question(ctx, model, messages)}]
        msgs, fit_error = fit_messages(prompt.system, messages, _max_length(model))
        if fit_error:
            self.failed(state, fit_error)
            if not state.error(self.id):
                yield str(state.output(self.id, "content"))
            return
        cite = bool(self._params().cite and state.reference().get("chunks") and "-->" not in self.id)
        cite_inline = cite and len(msgs) < 7
        if cite_inline:
            msgs[0]["content"] += "\n" + prompts.citation_prompt()
        answer = ""
        async for piece in self._tool_loop(ctx, model, prompt.with_images(msgs), options, stream=True):
            if "**ERROR**" in piece:
                self.failed(state, piece)
                yield str(state.output(self.id, "content") or piece)
                return
            if not cite or cite_inline:
                yield piece
            if is_answer(piece):
                answer += piece
        if cite and not cite_inline:
            chunks = list(state.reference().get("chunks", {}).values())
            system = prompts.citation_rewrite_prompt(format_chunks(chunks))
            cited = ""
            async for piece in stream_pieces(ctx, model, [{"role": "system", "content": system},
                                                          {"role": "user", "content": answer}], options):
                yield piece
                if is_answer(piece):
                    cited += piece
            answer = cited
        artifacts = self._artifact_markdown(state, answer)
        if artifacts:
            yield "\n\n" + artifacts
            answer += "\n\n" + artifacts
        state.set_output(self.id, "content", answer)

    async def _full_question(self, ctx: RunContext, model: ChatModel, messages: list[Message]) -> str:
        conversation = "\n".join(f"{m['role'].upper()}: {m.get('content', '')}" for m in messages)
        answer, error = await self.ask(ctx, model, [{"role": "user", "content": prompts.full_question_prompt(
            conversation)}], GenerationOptions())
        return str(messages[-1].get("content", "")) if error or not answer.strip() else answer

    # ------------------------------------------------------------------ the tool loop
    async def _tool_loop(self, ctx: RunContext, model: ChatModel, messages: list[Message],
                         options: GenerationOptions, *, stream: bool) -> AsyncIterator[str]:
        """Rounds of model calls and tool calls; yields answer pieces and progress notes."""
        params = self._params()
        schemas = [tool.function_schema() | {} for tool in self.tools.values()]
        for name, schema in zip(self.tools, schemas, strict=True):
            schema["function"] = {**schema["function"], "name": name}
        history = copy.deepcopy(messages)
        tool_options = GenerationOptions(**{**options.__dict__, "tool_choice": "auto"})
        servers = ctx.services.get("mcp")
        if params.mcp and isinstance(servers, McpServers):
            async with servers.connections(headers=params.custom_header or {}) as connections:
                async for piece in self._rounds(ctx, model, history, options, tool_options, schemas, connections,
                                                stream=stream):
                    yield piece
        else:
            async for piece in self._rounds(ctx, model, history, options, tool_options, schemas, None,
                                            stream=stream):
                yield piece

    async def _rounds(self, ctx: RunContext, model: ChatModel, history: list[Message], options: GenerationOptions,
                      tool_options: GenerationOptions, schemas: list[dict[str, Any]],
                      connections: McpConnections | None, *, stream: bool) -> AsyncIterator[str]:
        params = self._params()
        for _ in range(params.max_rounds + 1):
            response: ChatResponse | None = None
            if stream:
                final: list[ChatResponse] = []
                pieces = stream_pieces(ctx, model, history, tool_options, tools=schemas, final=final)
                async with contextlib.aclosing(pieces):
                    async for piece in pieces:
                        yield piece
                        if "**ERROR**" in piece:
                            return
                response = final[-1] if final else None
            else:
                try:
                    response = await model.chat(history, tools=schemas, options=tool_options)
                except ModelError as e:
                    yield f"**ERROR**: {e}"
                    return
                add_usage(ctx, response)
                if not response.tool_calls:
                    yield response.content
            if response is None or not response.tool_calls:
                return
            for call in response.tool_calls:
                yield THINK_OPEN
                yield Thought(f"Running the {call.name} tool...")
                yield THINK_CLOSE
            results = await asyncio.gather(*(self._call_tool(ctx, call, connections)
                                             for call in response.tool_calls))
            history.append({"role": "assistant", "content": response.content or "", "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in response.tool_calls]})
            for call, result in zip(response.tool_calls, results, strict=True):
                history.append({"role": "tool", "tool_call_id": call.id, "content": result})
        history.append({"role": "user", "content": prompts.tool_rounds_exceeded(params.max_rounds)})
        if stream:
            async for piece in stream_pieces(ctx, model, history, options):
                yield piece
        else:
            try:
                response = await model.chat(history, options=options)
            except ModelError as e:
                yield f"**ERROR**: {e}"
                return
            add_usage(ctx, response)
            yield response.content

    async def _call_tool(self, ctx: RunContext, call: ToolCall, connections: McpConnections | None) -> str:
        """One tool call's result as text for the model; problems are results too."""
        tool = self.tools.get(call.name)
        if tool is None:
            return f"Tool {call.name!r} does not exist. Available tools: {', '.join(self.tools)}."
        try:
            args = json_repair.loads(call.arguments) if call.arguments.strip() else {}
        except Exception:
            args = None
        if not isinstance(args, dict):
            return (f"Tool arguments for {call.name} must be a JSON object, got "
                    f"{type(args).__name__ if args is not None else 'invalid JSON'}: {call.arguments[:200]}")
        if isinstance(tool, _McpTool):
            if connections is None:
                return f"MCP server {tool.mcp_id!r} is not configured"
            try:
                return await connections.get(tool.mcp_id).call(tool.name, args)
            except Exception as e:
                return f"MCP server error: {e}"
        result = await tool.call_for_model(ctx, args)
        if result is None:
            result = ctx.state.output(tool.id, "content") or ctx.state.output_values(tool.id) \
                if ctx.state.has_component(tool.id) else ""
        if isinstance(result, TextStream):
            result = await result.read()
        return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False, default=str)

    def _artifact_markdown(self, state: RunState, existing: str) -> str:
        parts: list[str] = []
        for tool in self.tools.values():
            if not state.has_component(tool.id):
                continue
            artifacts = state.output(tool.id, "_ARTIFACTS")
            for art in artifacts if isinstance(artifacts, list) else []:
                if not isinstance(art, dict):
                    continue
                url, name = art.get("url", ""), art.get("name", "")
                if url and (f"![]({url})" in existing or f"![{name}]({url})" in existing):
                    continue
                if str(art.get("mime_type", "")).startswith("image/"):
                    parts.append(f"![{name}]({url})")
                else:
                    parts.append(f"[Download {name}]({url})")
        return "\n\n".join(parts)

