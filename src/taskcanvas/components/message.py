"""Message: say something to the user, streamed as it is produced (spec §3.10, §4.3)."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

from pydantic import field_validator

from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.refs import VARIABLE_REF_CASED, split_text
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import has_jinja, render

_DOWNLOAD_KEYS = ("doc_id", "filename", "mime_type")


class MessageParams(ComponentParams):
    content: list[str] = []
    stream: bool = True
    output_format: str | None = None
    auto_play: bool = False
    status: str | None = None
    outputs: dict[str, Any] = {"content": {"type": "str"}, "downloads": {"type": "list"}}

    @field_validator("content", mode="before")
    @classmethod
    def _content_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        if not v:
            raise ValueError("content must not be empty")
        return v


def _is_download(value: Any) -> bool:
    return isinstance(value, dict) and all(k in value for k in _DOWNLOAD_KEYS)


def _without_flag(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_flag(v) for v in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "include_download_info_in_content"}
    return value


def message_text(value: Any, downloads: list[dict[str, Any]] | None = None, delimiter: str | None = None) -> str:
    """A value as Message text; generated-document infos go to ``downloads`` instead (ragflow rules)."""
    found: list[Any] = []
    decoded = value
    if isinstance(value, str) and value[:1] in "[{":
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = value
    if _is_download(decoded):
        found = [decoded]
    elif isinstance(decoded, list) and decoded and all(_is_download(v) for v in decoded):
        found = decoded
    if found:
        if downloads is not None:
            downloads.extend(_without_flag(v) for v in found)
        if any(v.get("include_download_info_in_content") for v in found):
            return json.dumps(_without_flag(decoded), ensure_ascii=False)
        return ""
    if value is None:
        return ""
    if isinstance(value, list) and delimiter:
        return delimiter.join(str(v) for v in value)
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


async def text_values(component: Component, state: RunState, text: str, delimiter: str | None = None,
                      downloads: list[dict[str, Any]] | None = None) -> dict[str, str]:
    """Each reference of ``text`` (iteration aliases included) with its value as text."""
    values: dict[str, str] = {}
    for name, target in component.text_refs_of(text).items():
        value = state.get_variable_value(target)
        if isinstance(value, TextStream):
            text_value = await value.read()
        else:
            text_value = message_text(value, downloads, delimiter)
        values[name] = text_value or ""
        state.set_input(component.id, name, values[name])
    return values


class Message(Component):
    component_name = "Message"
    Params = MessageParams
    reads_text = True

    def text_inputs(self) -> list[str]:
        params = self.params
        assert isinstance(params, MessageParams)
        return ["".join(params.content)]

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, MessageParams)
        text = random.choice(params.content)
        state = ctx.state
        if params.stream and not has_jinja(text):
            state.set_output(self.id, "content", TextStream(self._stream(state, text)))
            return
        downloads: list[dict[str, Any]] = []
        values = await text_values(self, state, text, downloads=downloads)
        state.set_output(self.id, "downloads", downloads)
        state.set_output(self.id, "content", render(text, values))

    async def _stream(self, state: RunState, text: str) -> AsyncIterator[str]:
        downloads: list[dict[str, Any]] = []
        cache: dict[str, str] = {}
        for is_ref, piece in split_text(text, VARIABLE_REF_CASED):
            if not is_ref:
                yield piece
                continue
            if piece in cache:
                yield cache[piece]
                continue
            value = state.get_variable_value(piece)
            if isinstance(value, TextStream):
                async for chunk in value:
                    yield chunk
                state.set_input(self.id, piece, value.text)
                continue
            text_value = message_text(value, downloads)
            cache[piece] = text_value
            state.set_input(self.id, piece, text_value)
            yield text_value
        state.set_output(self.id, "downloads", downloads)
