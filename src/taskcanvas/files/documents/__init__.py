"""Documents made from Markdown: PDF, DOCX, plain text, Markdown, HTML, and XLSX from its tables.

One parse (markdown-it-py) feeds every writer: reportlab lays out PDF pages, python-docx
writes Word files, openpyxl writes workbooks. Nothing here needs a program or a font outside
the Python packages (see ``docs/documents.md``). Rendering is CPU work: callers in a running
event loop hand it to a thread (``asyncio.to_thread``). The writers are imported when first
used, so importing this package (every Message does) stays cheap.

    setup = PageSetup(header="ACME", page_numbers=True)
    pdf = render_document("# Report\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |", "pdf", setup)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from taskcanvas.files.documents._markdown import parse
from taskcanvas.files.documents._page import PageSetup
from taskcanvas.files.documents._text import markdown_to_html, markdown_to_text

if TYPE_CHECKING:
    from taskcanvas.files.documents._sheets import SheetTable

__all__ = [
    "FORMATS",
    "DocumentFormat",
    "PageSetup",
    "UnsupportedFormat",
    "markdown_tables",
    "markdown_to_html",
    "markdown_to_text",
    "markdown_to_xlsx",
    "render_document",
    "strip_thinking",
]


@dataclass(frozen=True)
class DocumentFormat:
    name: str
    extension: str
    mime_type: str


FORMATS: dict[str, DocumentFormat] = {f.name: f for f in (
    DocumentFormat("pdf", "pdf", "application/pdf"),
    DocumentFormat("docx", "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    DocumentFormat("txt", "txt", "text/plain"),
    DocumentFormat("markdown", "md", "text/markdown"),
    DocumentFormat("html", "html", "text/html"),
    DocumentFormat("xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
)}


class UnsupportedFormat(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(f"Unsupported output format: {name}")
        self.name = name


def render_document(markdown: str, fmt: str, setup: PageSetup | None = None) -> bytes:
    """``markdown`` as a file of format ``fmt`` (a key of :data:`FORMATS`).

    PDF and DOCX carry the page decorations of ``setup``; the text formats carry only its
    timestamp, as the first line. XLSX holds the text's Markdown tables.
    """
    setup = setup or PageSetup()
    if fmt == "pdf":
        from taskcanvas.files.documents._pdf import render_pdf

        return render_pdf(parse(markdown), setup)
    if fmt == "docx":
        from taskcanvas.files.documents._word import render_docx

        return render_docx(parse(markdown), setup)
    if fmt == "xlsx":
        return markdown_to_xlsx(markdown)
    if fmt not in FORMATS:
        raise UnsupportedFormat(fmt)
    source = f"{setup.timestamp}\n\n{markdown}" if setup.timestamp else markdown
    if fmt == "txt":
        return markdown_to_text(source).encode("utf-8")
    if fmt == "html":
        return markdown_to_html(source, title=setup.title, font_size=setup.font_size).encode("utf-8")
    return (source if source.endswith("\n") else source + "\n").encode("utf-8")


def markdown_tables(text: str) -> list[SheetTable]:
    """``(sheet name, header, rows)`` for every Markdown table of ``text`` (see :func:`markdown_to_xlsx`)."""
    from taskcanvas.files.documents._sheets import markdown_tables as tables

    return tables(text)


def markdown_to_xlsx(text: str) -> bytes:
    """A workbook with a sheet for each Markdown table of ``text`` (a ``Data`` sheet holding it without)."""
    from taskcanvas.files.documents._sheets import markdown_to_xlsx as workbook

    return workbook(text)


def strip_thinking(text: str) -> str:
    """``text`` without reasoning blocks (``<think>…</think>``, an unclosed ``<think>`` to the end).

    Runs of blank lines the blocks leave are collapsed and the text trimmed, as ragflow does
    before it exports a message or a document.
    """
    if not text:
        return text
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL)
    text = re.sub(r"<think>.*$", "", text, flags=re.DOTALL)
    text = re.sub(r"</?think>", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
