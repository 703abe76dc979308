"""LLM: ask a chat model, with ragflow's prompt building, streaming and structured output (spec §4.4)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any, ClassVar

import json_repair
from pydantic import field_validator

from taskcanvas.components import prompts
from taskcanvas.dsl.errors import DslIssue
from taskcanvas.llm.errors import ModelError
from taskcanvas.llm.protocol import ChatModel, ChatResponse, GenerationOptions, Message, ModelProvider
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import string_format

_PROMPT_TAGS = ("TASK_ANALYSIS", "PLAN_GENERATION", "REFLECTION", "CONTEXT_SUMMARY", "CONTEXT_RANKING",
                "CITATION_GUIDELINES")
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
DEFAULT_CONTEXT = 8192


class LLMParams(ComponentParams):
    llm_id: str = ""
    sys_prompt: str = ""
    prompts: list[dict[str, Any]] = [{"role": "user", "content": "{sys.query}"}]
    max_tokens: float = 0
    temperature: float = 0
    top_p: float = 0
    presence_penalty: float = 0
    frequency_penalty: float = 0
    output_structure: Any = None
    cite: bool = True
    visual_files_var: str | None = None

    @field_validator("prompts", mode="before")
    @classmethod
    def _prompts_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [{"role": "user", "content": v}]
        if not v:
            raise ValueError("prompts must not be empty (the user prompt)")
        return v

    @field_validator("temperature", "top_p", "presence_penalty", "frequency_penalty")
    @classmethod
    def _unit(cls, v: float) -> float:
        if not 0 <= float(v) <= 1:
            raise ValueError("must be between 0 and 1")
        return v

    @field_validator("max_tokens")
    @classmethod
    def _not_negative(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must be 0 or more")
        return v

    def options(self, json_schema: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None
                ) -> GenerationOptions:
        """Only what the canvas switched on is sent (ragflow's ``gen_conf``)."""
        def on(name: str) -> bool:
            return bool(getattr(self, name, False))

        extras = dict(extra or {})
        thinking = getattr(self, "thinking", None)
        if thinking and thinking != "default":
            extras["thinking"] = thinking
        return GenerationOptions(
            max_tokens=int(self.max_tokens) if self.max_tokens > 0 and on("maxTokensEnabled") else None,
            temperature=float(self.temperature) if self.temperature >= 0 and on("temperatureEnabled") else None,
            top_p=float(self.top_p) if self.top_p > 0 and on("topPEnabled") else None,
            presence_penalty=float(self.presence_penalty)
            if self.presence_penalty > 0 and on("presencePenaltyEnabled") else None,
            frequency_penalty=float(self.frequency_penalty)
            if self.frequency_penalty > 0 and on("frequencyPenaltyEnabled") else None,
            json_schema=json_schema,
            extra=extras,
        )


def models(ctx: RunContext) -> ModelProvider:
    provider = ctx.services.get("models")
    if provider is None:
        raise RuntimeError("no chat models are configured (the engine was started without a model provider)")
    return provider  # type: ignore[no-any-return]


def count_tokens(text: str) -> int:
    """A cheap token estimate (no tokenizer download at run time): about one per word or 4 characters."""
    return max(len(text.split()), len(text) // 4)


def _content_text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def fit_messages(system: str, messages: list[Message], max_length: int) -> tuple[list[Message], str | None]:
    """System prompt + messages trimmed to the model's context (ragflow's ``message_fit_in``).

    Returns the messages (system first) and an error when nothing sensible is left.
    """
    budget = int((max_length or DEFAULT_CONTEXT) * 0.97)
    msgs: list[Message] = [{"role": "system", "content": system}, *copy.deepcopy(messages)]

    def total() -> int:
        return sum(count_tokens(_content_text(m)) for m in msgs)

    if total() >= budget and len(msgs) > 2:
        msgs = [msgs[0], msgs[-1]]
    if total() >= budget:
        # Keep the system prompt's share and cut the rest of the question, as ragflow does.
        room = max(budget - count_tokens(system), 0)
        last = msgs[-1]
        if isinstance(last.get("content"), str):
            last["content"] = last["content"][: room * 4]
    if len(msgs) < 2:
        return msgs, "**ERROR**: message_fit_in produced insufficient messages for LLM"
    last = msgs[-1]
    if last.get("role") != "user" or not _content_text(last).strip():
        return msgs, "**ERROR**: LLM user message is empty after prompt fitting; check model max_tokens context setting"
    return msgs, None


def clean_json_answer(text: str) -> str:
    text = re.sub(r"^.*</think>", "", text, flags=re.DOTALL)
    text = re.sub(r"^.*```json", "", text, flags=re.DOTALL)
    return re.sub(r"```\n*$", "", text, flags=re.DOTALL)


def _images_in(value: Any) -> list[str]:
    found: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            if v.strip().startswith("data:image/"):
                found.append(v.strip())
        elif isinstance(v, (list, tuple, set)):
            for item in v:
                walk(item)
        elif isinstance(v, dict):
            if "content" in v:
                walk(v["content"])
            else:
                for item in v.values():
                    walk(item)

    walk(value)
    return found


def _without_images(value: Any) -> Any:
    if isinstance(value, str):
        return None if value.strip().startswith("data:image/") else value
    if isinstance(value, (list, tuple, set)):
        kept = [_without_images(v) for v in value]
        return [v for v in kept if v is not None and v != [] and v != {}]
    if isinstance(value, dict):
        if value.get("type") in {"image_url", "input_image", "image"} and _images_in(value):
            return None
        cleaned = {k: _without_images(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != [] and v != {}}
    return value


class Prompt:
    """What one call sends: system prompt, messages and images."""

    def __init__(self, system: str, messages: list[Message], images: list[str], tags: dict[str, str]) -> None:
        self.system = system
        self.messages = messages
        self.images = images
        self.tags = tags

    def with_images(self, messages: list[Message]) -> list[Message]:
        """``messages`` with the images attached to the last user message (vision input)."""
        if not self.images:
            return messages
        out = copy.deepcopy(messages)
        for m in reversed(out):
            if m.get("role") == "user":
                text = m.get("content") if isinstance(m.get("content"), str) else _content_text(m)
                m["content"] = [{"type": "text", "text": text},
                                *({"type": "image_url", "image_url": {"url": img}} for img in self.images)]
                break
        return out


class LLM(Component):
    component_name = "LLM"
    Params: ClassVar[type[ComponentParams]] = LLMParams
    reads_text = True

    # ------------------------------------------------------------------ inputs
    def llm_params(self) -> LLMParams:
        params = self.params
        assert isinstance(params, LLMParams)
        return params

    def text_inputs(self) -> list[str]:
        params = self.llm_params()
        return [params.sys_prompt, *(str(p.get("content", "")) for p in params.prompts)]

    def model_ids(self) -> list[str]:
        return [self.llm_params().llm_id]

    def requirements(self, services: Mapping[str, Any]) -> list[DslIssue]:
        provider = services.get("models")
        issues = []
        for llm_id in dict.fromkeys(self.model_ids()):
            if provider is None:
                issues.append(DslIssue("no_model", "needs a chat model, but no models are configured", self.id,
                                       "params.llm_id"))
                break
            try:
                provider.get(llm_id)
            except ModelError as e:
                issues.append(DslIssue("no_model", str(e), self.id, "params.llm_id"))
        return issues

    def model(self, ctx: RunContext) -> ChatModel:
        return models(ctx).get(self.llm_params().llm_id)

    def output_schema(self) -> dict[str, Any] | None:
        cand = self.params.outputs.get("structured")
        if isinstance(cand, dict):
            if isinstance(cand.get("properties"), dict) and cand["properties"]:
                return cand
            for key in ("schema", "structured"):
                inner = cand.get(key)
                if isinstance(inner, dict) and isinstance(inner.get("properties"), dict) and inner["properties"]:
                    return inner
        return None

    def thoughts(self, state: RunState) -> str:
        prompt = self._prompt_now(state)
        last = prompt.messages[-1]["content"] if prompt.messages else ""
        last = re.sub(r"(User's query:|[\\]+)", "", str(last), flags=re.DOTALL)
        return "⌛Give me a moment—starting from: \n\n" + last + "\n\nI’ll figure out our best next move."

    def _prompt_now(self, state: RunState) -> Prompt:
        values = {}
        for name, target in self.text_refs().items():
            value = state.get_variable_value(target)
            values[name] = value.text if isinstance(value, TextStream) else value
        return self._build_prompt(state, values, record=False)

    async def prompt(self, state: RunState, user_prompts: list[dict[str, Any]] | None = None) -> Prompt:
        """Resolve the references and build the messages (spec §4.4 "Prompt build").

        ``user_prompts`` replaces the canvas's prompts (a sub-agent called with a task).
        """
        values: dict[str, Any] = {}
        for name, target in self.text_refs().items():
            value = state.get_variable_value(target)
            values[name] = await value.read() if isinstance(value, TextStream) else value
        return self._build_prompt(state, values, record=True, user_prompts=user_prompts)

    def _build_prompt(self, state: RunState, values: Mapping[str, Any], *, record: bool,
                      user_prompts: list[dict[str, Any]] | None = None) -> Prompt:
        params = self.llm_params()
        images: list[str] = []
        if params.visual_files_var:
            images.extend(_images_in(state.get_variable_value(params.visual_files_var)))
        args: dict[str, str] = {}
        for name, raw in values.items():
            images.extend(_images_in(raw))
            value = _without_images(raw)
            if value is None:
                value = ""
            if not isinstance(value, str):
                try:
                    value = json.dumps(value, ensure_ascii=False)
                except (TypeError, ValueError):
                    value = str(value)
            args[name] = value
            if record:
                state.set_input(self.id, name, value)
        file_texts, file_images = self._sys_files(state)
        images = list(dict.fromkeys(images + file_images))
        messages = state.get_history(params.message_history_window_size)[:-1]
        size = len(messages)
        for p in user_prompts or params.prompts:
            formatted = {**p, "content": string_format(str(p.get("content", "")), args)}
            if len(messages) == size and messages and messages[-1]["role"] == formatted.get("role"):
                messages[-1] = formatted
            else:
                messages.append(formatted)
        if file_texts:
            joined = "\n\n".join(file_texts)
            for m in reversed(messages):
                if m.get("role") == "user":
                    m["content"] = (m.get("content") or "") + "\n\n" + joined
                    break
            else:
                messages.append({"role": "user", "content": joined})
        system = string_format(params.sys_prompt, args)
        tags: dict[str, str] = {}
        for tag in _PROMPT_TAGS:
            pattern = rf"<{tag}>(.*?)</{tag}>"
            found = re.search(pattern, system, flags=re.DOTALL | re.IGNORECASE)
            if found:
                tags[tag.lower()] = found.group(1)
                system = re.sub(pattern, "", system, flags=re.DOTALL | re.IGNORECASE)
        if params.cite and state.reference().get("chunks"):
            system += prompts.citation_prompt()
        return Prompt(system, messages, images, tags)

    def _sys_files(self, state: RunState) -> tuple[list[str], list[str]]:
        files = state.globals.get("sys.files") or []
        params = self.llm_params()
        explicit = "{sys.files}" in (params.sys_prompt or "") or any(
            "{sys.files}" in str(p.get("content", "")) for p in params.prompts)
        if not files or explicit:
            return [], []
        texts = [f for f in files if isinstance(f, str) and not f.startswith("data:image/")]
        images = [f for f in files if isinstance(f, str) and f.startswith("data:image/")]
        return texts, images

    # ------------------------------------------------------------------ running
    def streams_to_message(self) -> bool:
        """Whether the answer streams into a Message downstream (and no exception goto applies)."""
        params = self.params
        goto = bool(params.exception_method and params.exception_goto)
        return not goto and any(self.canvas.component_type(d) == "Message" for d in self.spec.downstream)

    def failed(self, state: RunState, error: str) -> None:
        """An answer that is an error: the default value if configured (comment), else the error."""
        default = self.params.exception_default_value if self.params.exception_method == "comment" else None
        if default:
            state.set_output(self.id, "content", default)
        else:
            state.set_output(self.id, "_ERROR", error)

    async def invoke(self, ctx: RunContext) -> None:
        state = ctx.state
        params = self.llm_params()
        prompt = await self.prompt(state)
        model = self.model(ctx)
        extra = _chat_template_kwargs(state)
        schema = self.output_schema()
        if schema is not None:
            await self._structured(ctx, model, prompt, schema, extra)
            return
        if self.streams_to_message():
            state.set_output(self.id, "content", TextStream(self.stream_answer(ctx, model, prompt, extra)))
            return
        error = ""
        for attempt in range(params.max_retries + 1):
            msgs, fit_error = fit_messages(prompt.system, prompt.messages, _max_length(model))
            if fit_error:
                error = fit_error
                break
            answer, error = await self.ask(ctx, model, prompt.with_images(msgs), params.options(extra=extra))
            if not error:
                state.set_output(self.id, "content", answer)
                return
            if attempt < params.max_retries:
                await asyncio.sleep(params.delay_after_error)
        self.failed(state, error)

    async def ask(self, ctx: RunContext, model: ChatModel, messages: list[Message],
                  options: GenerationOptions) -> tuple[str, str]:
        """One blocking call: ``(answer, "")`` or ``("", error)``; an answer saying **ERROR** is an error."""
        try:
            response = await model.chat(messages, options=options)
        except ModelError as e:
            return "", f"**ERROR**: {e}"
        add_usage(ctx, response)
        if "**ERROR**" in response.content:
            return "", response.content
        return response.content, ""

    async def _structured(self, ctx: RunContext, model: ChatModel, prompt: Prompt, schema: dict[str, Any],
                          extra: Mapping[str, Any]) -> None:
        state = ctx.state
        params = self.llm_params()
        system = prompt.system + prompts.structured_output_prompt(json.dumps(schema, ensure_ascii=False, indent=2))
        history = list(prompt.messages)
        error = ""
        for _ in range(params.max_retries + 1):
            msgs, fit_error = fit_messages(system, history, _max_length(model))
            if fit_error:
                state.set_output(self.id, "_ERROR", fit_error)
                return
            answer, error = await self.ask(ctx, model, prompt.with_images(msgs), params.options(extra=extra))
            if error:
                continue
            try:
                state.set_output(self.id, "structured", json_repair.loads(clean_json_answer(answer)))
                return
            except Exception:
                history = [*msgs[1:], {"role": "user", "content": "The answer can't not be parsed as JSON"}]
                error = "The answer can't not be parsed as JSON"
        if error:
            state.set_output(self.id, "_ERROR", error)

    async def stream_answer(self, ctx: RunContext, model: ChatModel, prompt: Prompt,
                            extra: Mapping[str, Any]) -> AsyncIterator[str]:
        """The answer as chunks for a Message; reasoning between ``<think>`` markers."""
        state = ctx.state
        msgs, fit_error = fit_messages(prompt.system, prompt.messages, _max_length(model))
        if fit_error:
            default = self.params.exception_default_value if self.params.exception_method == "comment" else None
            if default:
                state.set_output(self.id, "content", default)
                yield str(default)
            else:
                state.set_output(self.id, "_ERROR", fit_error)
                state.set_output(self.id, "content", "")
            return
        answer = ""
        async for piece in stream_pieces(ctx, model, prompt.with_images(msgs), self.llm_params().options(extra=extra)):
            if piece.startswith("**ERROR**") or "**ERROR**" in piece:
                default = self.params.exception_default_value if self.params.exception_method == "comment" else None
                if default:
                    state.set_output(self.id, "content", default)
                    yield str(default)
                else:
                    state.set_output(self.id, "_ERROR", piece)
                    state.set_output(self.id, "content", answer)
                return
            if is_answer(piece):
                answer += piece
            yield piece
        state.set_output(self.id, "content", answer)


class Thought(str):
    """Text shown to the user as thinking (a model's reasoning, a progress note); never part of an answer."""


def is_answer(piece: str) -> bool:
    """Whether a streamed piece belongs to the answer (not a think marker, not a thought)."""
    return not isinstance(piece, Thought) and piece not in (THINK_OPEN, THINK_CLOSE)


async def stream_pieces(ctx: RunContext, model: ChatModel, messages: list[Message],
                        options: GenerationOptions, tools: list[dict[str, Any]] | None = None,
                        final: list[ChatResponse] | None = None) -> AsyncGenerator[str, None]:
    """A model's stream as text pieces: ``<think>``, reasoning, ``</think>``, answer text.

    A model error becomes one ``**ERROR**: ...`` piece. The assembled response (tool calls,
    usage) is appended to ``final`` when given.
    """
    thinking = False
    try:
        async with contextlib.aclosing(model.stream(messages, tools=tools, options=options)) as chunks:
            async for chunk in chunks:
                if chunk.reasoning:
                    if not thinking:
                        thinking = True
                        yield THINK_OPEN
                    yield Thought(chunk.reasoning)
                if chunk.content:
                    if thinking:
                        thinking = False
                        yield THINK_CLOSE
                    yield chunk.content
                if chunk.done and chunk.response is not None:
                    add_usage(ctx, chunk.response)
                    if final is not None:
                        final.append(chunk.response)
    except ModelError as e:
        if thinking:
            yield THINK_CLOSE
        yield f"**ERROR**: {e}"
        return
    if thinking:
        yield THINK_CLOSE


def add_usage(ctx: RunContext, response: ChatResponse) -> None:
    usage = ctx.usage
    usage["prompt_tokens"] += response.usage.prompt_tokens
    usage["completion_tokens"] += response.usage.completion_tokens
    usage["total_tokens"] += response.usage.total_tokens
    usage["calls"] += 1


def _max_length(model: ChatModel) -> int:
    return int(getattr(model, "max_length", 0) or DEFAULT_CONTEXT)


def _chat_template_kwargs(state: RunState) -> dict[str, Any]:
    value = state.globals.get("sys.chat_template_kwargs")
    if isinstance(value, str):
        try:
            value = json_repair.loads(value)
        except Exception:
            return {}
    return {"chat_template_kwargs": value} if isinstance(value, dict) else {}
