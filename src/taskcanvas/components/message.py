"""Message: say something to the user, streamed as it is produced (spec §3.10, §4.3).

Generated documents that the text refers to (a DocGenerator's ``download``) become the
Message's ``downloads``. With ``output_format`` the said text is also kept as a file in the
file store (Markdown, HTML, PDF, DOCX, or XLSX of its tables) and named in ``attachment``;
as in ragflow, a conversion that fails is logged and the Message goes on without one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

from pydantic import field_validator

from taskcanvas.files.documents import FORMATS, PageSetup, render_document, strip_thinking
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.refs import VARIABLE_REF_CASED, split_text
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream
from taskcanvas.runtime.templates import has_jinja, render

_DOWNLOAD_KEYS = ("doc_id", "filename", "mime_type")
CONVERSION_FORMATS = ("markdown", "html", "pdf", "docx", "xlsx")
"""``output_format`` values; any other means markdown (ragflow's rule)."""
_log = logging.getLogger(__name__)


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
            state.set_output(self.id, "content", TextStream(self._stream(ctx, text)))
            return
        downloads: list[dict[str, Any]] = []
        values = await text_values(self, state, text, downloads=downloads)
        content = render(text, values)
        state.set_output(self.id, "downloads", downloads)
        state.set_output(self.id, "content", content)
        await self._convert(ctx, content)

    async def _stream(self, ctx: RunContext, text: str) -> AsyncIterator[str]:
        state = ctx.state
        downloads: list[dict[str, Any]] = []
        cache: dict[str, str] = {}
        said: list[str] = []  # with the <think> markers, which the conversion removes with their text
        for is_ref, piece in split_text(text, VARIABLE_REF_CASED):
            if not is_ref:
                said.append(piece)
                yield piece
                continue
            if piece in cache:
                said.append(cache[piece])
                yield cache[piece]
                continue
            value = state.get_variable_value(piece)
            if isinstance(value, TextStream):
                async for chunk in value:
                    said.append(chunk)
                    yield chunk
                state.set_input(self.id, piece, value.text)
                continue
            text_value = message_text(value, downloads)
            cache[piece] = text_value
            state.set_input(self.id, piece, text_value)
            said.append(text_value)
            yield text_value
        state.set_output(self.id, "downloads", downloads)
        await self._convert(ctx, "".join(said))

    async def _convert(self, ctx: RunContext, content: str) -> None:
        """With ``output_format``: store the text as a file and name it in ``attachment``."""
        params = self.params
        assert isinstance(params, MessageParams)
        if not params.output_format:
            return
        fmt = params.output_format.lower()
        if fmt not in CONVERSION_FORMATS:
            fmt = "markdown"
        kind = FORMATS[fmt]
        try:
            store = ctx.services.get("files")
            if store is None:
                raise RuntimeError("there is no file store to keep it in")
            setup = PageSetup(page_numbers=fmt == "pdf")
            data = await asyncio.to_thread(render_document, strip_thinking(content), fmt, setup)
            blob = await store.put(data, filename=f"message.{kind.extension}", mime_type=kind.mime_type)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            _log.error("Message %s: converting the content to %s failed: %s", self.id, fmt, e)
            return
        ctx.state.set_output(self.id, "attachment",
                             {"doc_id": blob.id, "format": fmt, "file_name": f"{blob.id[:8]}.{fmt}"})
