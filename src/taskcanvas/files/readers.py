"""The text of a document, chosen by its file name, as ragflow's parsers give it to an LLM.

ragflow (``FileService.parse`` → ``rag/app/naive.py``) reads a file by its extension: PDF and
DOCX as their text, spreadsheets and CSV one line per row (``header：value; ...``, the sheet
named after ``——`` unless it is called "Sheet..."), text, code, Markdown and JSON as they are,
HTML as its visible text. Images become ``data:`` URLs (see :func:`image_data_url`). Every
reader here is a pure function of bytes; the blocking ones are run in threads by the caller.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from typing import Any

from taskcanvas.files.errors import FileError

__all__ = ["SUPPORTED", "document_text", "image_data_url", "is_image_name"]

_TEXT = re.compile(
    r"\.(txt|md|markdown|mdx|json|jsonl|ldjson|py|js|java|c|cpp|h|php|go|ts|sh|cs|kt|sql|yml|yaml|xml|ini)$", re.I)
# ragflow's FileType.VISUAL extensions (api/utils/file_utils.py filename_type): parsed as images.
_VISUAL = re.compile(
    r"\.(jpg|jpeg|png|tif|gif|bmp|pcx|tga|exif|fpx|svg|psd|cdr|pcd|dxf|ufo|eps|ai|raw|wmf|webp|avif|apng|icon"
    r"|ico|mpg|mpeg|avi|rm|rmvb|mov|wmv|asf|dat|asx|wvx|mpe|mpa|mp4|mkv)$", re.I)

SUPPORTED = "PDF, DOCX, XLSX, CSV, text, Markdown, JSON, HTML and images"
"""What :func:`document_text` and :func:`image_data_url` read, for error messages and docs."""


def is_image_name(filename: str) -> bool:
    """Whether ragflow treats a file of this name as a picture (``FileType.VISUAL``)."""
    return bool(_VISUAL.search(filename))


def image_data_url(content: bytes, mime_type: str | None = None) -> str:
    """``data:<type>;base64,...``: the given type, else PNG or JPEG sniffed as ragflow does."""
    if not mime_type or "image" not in mime_type:
        mime_type = "image/jpeg" if content[:2] == b"\xff\xd8" else "image/png"
    return f"data:{mime_type};base64,{base64.b64encode(content).decode('ascii')}"


def document_text(filename: str, content: bytes) -> str:
    """The text of ``content`` read as the kind of file ``filename`` names.

    Raises :class:`FileError` (naming the file) for a kind it cannot read or a file that is
    not what its name says.
    """
    reader = _reader_for(filename)
    if reader is None:
        raise FileError(filename, f"cannot read this kind of file (taskcanvas reads {SUPPORTED})")
    try:
        return reader(content)
    except FileError:
        raise
    except Exception as e:  # each library fails its own way on a broken file
        kind = filename.rsplit(".", 1)[-1].upper() if "." in filename else "file"
        raise FileError(filename, f"not a readable {kind} file ({_reason(e)})") from None


def _reader_for(filename: str) -> Callable[[bytes], str] | None:
    name = filename.lower()
    if name.endswith(".pdf"):
        return _pdf
    if name.endswith(".docx"):
        return _docx
    if name.endswith((".xlsx", ".xlsm")):
        return _xlsx
    if name.endswith(".csv"):
        return _csv
    if name.endswith((".htm", ".html")):
        return _html
    if _TEXT.search(name):
        return _decode_text
    return None


def _reason(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _decode_text(content: bytes) -> str:
    """Bytes as text: UTF-8 (with or without a BOM), else the encoding charset-normalizer finds."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    # UTF-16/32 without a BOM is rare in files people upload, and short text fits several code
    # pages about equally well: then the common ones win, cp1252 for Western text and gb18030
    # for Chinese (ragflow tries GB encodings first too).
    candidates = [m for m in from_bytes(content) if not m.encoding.startswith(("utf_16", "utf_32"))
                  or m.bom]
    if not candidates:
        raise ValueError("the bytes are not text in any encoding")
    best = min(candidates, key=lambda m: m.chaos)
    for preferred in ("cp1252", "gb18030"):
        for match in candidates:
            if match.encoding == preferred and match.chaos <= best.chaos + 0.1:
                return str(match)
    return str(best)


def _pdf(content: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(content))
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception:
            raise ValueError("the PDF is encrypted") from None
    return "\n".join((page.extract_text() or "").strip() for page in reader.pages).strip()


def _docx(content: bytes) -> str:
    import docx

    document = docx.Document(io.BytesIO(content))
    lines = [p.text for p in document.paragraphs if p.text.strip()]
    for table in document.tables:
        for row in table.rows:
            cells = [c.text.strip() for c in row.cells]
            if any(cells):
                lines.append(" | ".join(cells))
    return "\n".join(lines)


def _xlsx(content: bytes) -> str:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    try:
        return "\n".join(line for sheet in book.worksheets
                         for line in _table_lines(sheet.title, sheet.iter_rows(values_only=True)))
    finally:
        book.close()


def _csv(content: bytes) -> str:
    text = _decode_text(content)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    return "\n".join(_table_lines("Sheet1", csv.reader(io.StringIO(text), dialect)))


def _table_lines(sheet: str, rows: Iterable[Iterable[Any]]) -> Iterable[str]:
    """ragflow's ExcelParser lines: ``header：value; ...`` per row after the first."""
    it = iter(rows)
    header = [("" if v is None else str(v)) for v in next(it, [])]
    suffix = "" if "sheet" in sheet.lower() else f" ——{sheet}"
    for row in it:
        fields = []
        for i, value in enumerate(row):
            if value is None or str(value).strip() == "":
                continue
            title = header[i] if i < len(header) else ""
            fields.append(f"{title}：{value}" if title else str(value))
        if fields:
            yield "; ".join(fields) + suffix


def _html(content: bytes) -> str:
    parser = _HtmlText()
    parser.feed(_decode_text(content))
    parser.close()
    return parser.text()


class _HtmlText(HTMLParser):
    """The visible text of a page: no scripts, styles or head; block elements on lines of their own."""

    _SKIP = frozenset({"script", "style", "head", "noscript", "template"})
    _BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
                        "table", "ul", "ol", "pre", "blockquote", "header", "footer"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self._parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self._parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self._parts).splitlines())
        return "\n".join(line for line in lines if line)
