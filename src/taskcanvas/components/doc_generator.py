"""DocGenerator: Markdown with references filled in, made into a PDF, DOCX, text, Markdown or HTML
file and kept in the file store (spec §4.15).

The outputs describe the stored file (``doc_id``, ``filename``, ``mime_type``, ``size``) and
``download``, ragflow's JSON string that a Message turns into a download. Rendering is
``taskcanvas.files.documents``; ``docs/documents.md`` lists where the files differ from ragflow's
(pandoc and LaTeX there, reportlab and python-docx here).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from pydantic import field_validator

from taskcanvas.components.message import message_text
from taskcanvas.errors import TaskcanvasError
from taskcanvas.files.documents import FORMATS, PageSetup, UnsupportedFormat, render_document, strip_thinking
from taskcanvas.runtime.component import Component, ComponentParams, RunContext
from taskcanvas.runtime.refs import VARIABLE_REF_CASED, split_text
from taskcanvas.runtime.state import RunState
from taskcanvas.runtime.stream import TextStream

OUTPUT_FORMATS = ("pdf", "docx", "txt", "markdown", "html")
MAX_FILENAME = 180
_UNSAFE_IN_FILENAME = re.compile(r'[\\/\x00-\x1f?#%*:|<>"]')
_EXTENSION = re.compile(r"\.(?=[A-Za-z0-9]{1,5}$)(?=.*[A-Za-z])[A-Za-z0-9]+$")


class DocumentGenerationFailed(TaskcanvasError):
    """The document could not be made or stored; the message says why (ragflow's wording)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Document generation failed: {reason}")


class DocGeneratorParams(ComponentParams):
    output_format: str | None = "pdf"
    content: str = ""
    filename: str = ""
    header_text: str = ""
    footer_text: str = ""
    watermark_text: str = ""
    add_page_numbers: bool = True
    add_timestamp: bool = True
    include_download_info_in_content: bool = False
    font_size: float = 12
    outputs: dict[str, Any] = {
        "doc_id": {"value": "", "type": "string"},
        "filename": {"value": "", "type": "string"},
        "mime_type": {"value": "", "type": "string"},
        "size": {"value": 0, "type": "number"},
        "download": {"value": "", "type": "string"},
    }

    @field_validator("content")
    @classmethod
    def _content_given(cls, v: str) -> str:
        if not v:
            raise ValueError("content must not be empty")
        return v

    @field_validator("font_size")
    @classmethod
    def _readable_size(cls, v: float) -> float:
        if v < 12:
            raise ValueError("font size must be 12 or more")
        return v

    @field_validator("filename", "header_text", "footer_text", "watermark_text", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        return "" if v is None else v


def sanitize_filename(name: str, extension: str) -> str:
    """A safe file name for ``name`` ending in ``.extension`` (ragflow's rules, at most 180 characters
    before the extension); an extension ``name`` already has is replaced."""
    name = _UNSAFE_IN_FILENAME.sub(" ", str(name or "").strip())
    name = re.sub(r"\s+", " ", name).strip(" .")
    # ragflow drops whatever follows the last dot ("Q1.2024 report" -> "Q1"); only a real extension goes here.
    base = _EXTENSION.sub("", name)
    base = base[:MAX_FILENAME].rstrip(" .") or "file"
    return f"{base}.{extension}"


def preview_path(doc_id: str, fmt: str, mime_type: str) -> str:
    """ragflow's preview link of an agent attachment."""
    return f"/api/v1/agents/attachments/{doc_id}/preview?{urlencode({'ext': fmt, 'mime_type': mime_type})}"


class DocGenerator(Component):
    component_name = "DocGenerator"
    Params = DocGeneratorParams
    # ragflow's DocGenerator is a Message: it waits for the components its content refers to.
    reads_text = True

    def text_inputs(self) -> list[str]:
        params = self.params
        assert isinstance(params, DocGeneratorParams)
        return [params.content]

    def text_refs_of(self, text: str) -> dict[str, str]:
        # ragflow fills in only {cpn@var}, {sys.x} and {env.x} here: {item} stays text.
        return {m.group(1): m.group(1) for m in VARIABLE_REF_CASED.finditer(text)}

    def thoughts(self, state: RunState) -> str:
        params = self.params
        assert isinstance(params, DocGeneratorParams)
        return f"Generating {(params.output_format or 'pdf').upper()} document with markdown conversion..."

    async def invoke(self, ctx: RunContext) -> None:
        params = self.params
        assert isinstance(params, DocGeneratorParams)
        fmt = (params.output_format or "pdf").lower()
        try:
            if fmt not in OUTPUT_FORMATS:
                raise UnsupportedFormat(fmt)
            store = ctx.services.get("files")
            if store is None:
                raise RuntimeError("there is no file store to keep the document in")
            content = strip_thinking(await _fill_in(ctx.state, params.content))
            kind = FORMATS[fmt]
            filename = self._filename(params, kind.extension)
            stamp = f"Generated: {datetime.now().strftime('%Y-%m-%d %H:%M:%S')}" if params.add_timestamp else ""
            setup = PageSetup(header=params.header_text, footer=params.footer_text, watermark=params.watermark_text,
                              page_numbers=params.add_page_numbers, timestamp=stamp, font_size=params.font_size,
                              title=os.path.splitext(filename)[0])
            data = await asyncio.to_thread(render_document, content, fmt, setup)
            if not data:
                raise ValueError("Document file is empty")
            blob = await store.put(data, filename=filename, mime_type=kind.mime_type)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise DocumentGenerationFailed(str(e) or type(e).__name__) from e
        download = {
            "doc_id": blob.id,
            "filename": filename,
            "mime_type": kind.mime_type,
            "size": len(data),
            "base64": base64.b64encode(data).decode("ascii"),
            "preview_url": preview_path(blob.id, fmt, kind.mime_type),
            "include_download_info_in_content": params.include_download_info_in_content,
        }
        state = ctx.state
        state.set_output(self.id, "doc_id", blob.id)
        state.set_output(self.id, "filename", filename)
        state.set_output(self.id, "mime_type", kind.mime_type)
        state.set_output(self.id, "size", len(data))
        state.set_output(self.id, "download", json.dumps(download))

    @staticmethod
    def _filename(params: DocGeneratorParams, extension: str) -> str:
        if params.filename:
            return sanitize_filename(params.filename, extension)
        return f"document_{datetime.now().strftime('%Y%m%d_%H%M%S')}_{uuid.uuid4().hex[:8]}.{extension}"


class DocsGenerator(DocGenerator):
    """The name ragflow's Go runtime also accepts."""

    component_name = "DocsGenerator"


async def _fill_in(state: RunState, text: str) -> str:
    """``text`` with every reference replaced by its value as Message text (downloads as ``""``)."""
    parts: list[str] = []
    for is_ref, piece in split_text(text, VARIABLE_REF_CASED):
        if not is_ref:
            parts.append(piece)
            continue
        value = state.get_variable_value(piece)
        parts.append(await value.read() if isinstance(value, TextStream) else message_text(value))
    return "".join(parts)
