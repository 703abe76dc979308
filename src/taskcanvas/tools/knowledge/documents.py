"""Documents into passages: text extraction by file type, then chunking.

Supported files: plain text and Markdown (``.txt``, ``.text``, ``.md``, ``.markdown``; UTF-8, read
as is), PDF (``.pdf``, text layer through pypdf; a scanned PDF without one has no text, there is
no OCR) and Word (``.docx``, paragraphs and tables in document order through python-docx; headings
become Markdown ``#`` lines). Anything else is refused with a :class:`DocumentError` naming the file.

Chunking (:func:`chunk_text`) follows the text's own structure:

- the text is cut into blocks at blank lines (paragraphs, list blocks, headings; a PDF page
  always ends a block);
- consecutive blocks are packed into one passage until it holds at least
  :data:`TARGET_CHUNK_CHARS` characters, never beyond :data:`MAX_CHUNK_CHARS`; a Markdown
  heading always starts a new passage, so a section's heading travels with its text;
- a block longer than :data:`MAX_CHUNK_CHARS` is cut between sentences (then between words,
  and as a last resort inside a word) into pieces that fit.

Passages do not overlap. They end at paragraph or sentence boundaries, so a passage seldom
starts mid-thought, and overlapping passages would put the same sentences twice into the model's
context whenever neighbours both match a query (and make them compete for ``top_n``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from taskcanvas.tools.knowledge.errors import DocumentError

__all__ = ["MAX_CHUNK_CHARS", "SUPPORTED_SUFFIXES", "TARGET_CHUNK_CHARS", "chunk_text", "extract_text"]

TARGET_CHUNK_CHARS = 600
"""A passage takes further blocks while it is shorter than this."""
MAX_CHUNK_CHARS = 1200
"""No passage is longer than this (about 300 tokens of English)."""

_TEXT = (".txt", ".text", ".md", ".markdown")
SUPPORTED_SUFFIXES: tuple[str, ...] = (*_TEXT, ".pdf", ".docx")

_BLOCK_BREAK = re.compile(r"\n[ \t\f\v]*\n\s*")
_HEADING = re.compile(r"#{1,6}\s")
_SENTENCE = re.compile(r".+?(?:[.!?;。！？；](?=\s|$)\s*|[。！？；]|$)", re.DOTALL)
_WORD = re.compile(r"\S+\s*|\s+")


# --------------------------------------------------------------------------- extraction
def extract_text(path: Path) -> str:
    """The text of ``path`` by its suffix; :class:`DocumentError` naming the file when it can't be read."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"'{path.suffix}'" if path.suffix else "without a suffix"
        raise DocumentError(f"cannot add {path}: unsupported file type {kind} "
                            f"(supported: {', '.join(SUPPORTED_SUFFIXES)})")
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "no such file"
        raise DocumentError(f"cannot add {path}: {reason}")
    if suffix in _TEXT:
        text = _read_text(path)
    elif suffix == ".pdf":
        text = _read_pdf(path)
    else:
        text = _read_docx(path)
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as e:
        raise DocumentError(f"cannot read {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise DocumentError(f"cannot add {path}: it is not UTF-8 text") from None


def _read_pdf(path: Path) -> str:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError
    except ImportError:  # pragma: no cover - pypdf is a dependency
        raise DocumentError(f"cannot add {path}: reading PDF files needs the pypdf package") from None
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentError(f"cannot add {path}: the PDF is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except OSError as e:
        raise DocumentError(f"cannot read {path}: {e.strerror or e}") from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as e:
        raise DocumentError(f"cannot add {path}: not a readable PDF ({e or type(e).__name__})") from None
    # A page break always ends a paragraph.
    return "\n\n".join(p.strip() for p in pages)


def _read_docx(path: Path) -> str:
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph
    except ImportError:  # pragma: no cover - python-docx is a dependency
        raise DocumentError(f"cannot add {path}: reading .docx files needs the python-docx package") from None
    try:
        document = docx.Document(str(path))
        blocks: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                text = item.text.strip()
                if text:
                    blocks.append(_heading_prefix(item) + text)
            elif isinstance(item, Table):
                rows = []
                for row in item.rows:
                    cells: list[str] = []
                    for cell in row.cells:
                        value = " ".join(cell.text.split())
                        if not cells or cells[-1] != value:  # a merged cell repeats its text
                            cells.append(value)
                    if any(cells):
                        rows.append(" | ".join(cells))
                if rows:
                    blocks.append("\n".join(rows))
    except OSError as e:
        raise DocumentError(f"cannot read {path}: {e.strerror or e}") from None
    except Exception as e:  # python-docx raises zip, XML and key errors for a broken file
        raise DocumentError(f"cannot add {path}: not a readable .docx file ({e or type(e).__name__})") from None
    return "\n\n".join(blocks)


def _heading_prefix(paragraph: Any) -> str:
    try:
        style = (paragraph.style.name or "") if paragraph.style is not None else ""
    except (KeyError, AttributeError, ValueError):
        return ""
    if style == "Title":
        return "# "
    m = re.fullmatch(r"Heading ([1-6])", style)
    return "#" * int(m.group(1)) + " " if m else ""


# --------------------------------------------------------------------------- chunking
def chunk_text(text: str) -> list[str]:
    """``text`` as passages (see the module docstring); empty when there is no text."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    blocks = [b.strip() for b in _BLOCK_BREAK.split(text)]
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for block in blocks:
        if not block:
            continue
        heading = _HEADING.match(block) is not None
        for piece in _split_long(block):
            if current and (heading or size >= TARGET_CHUNK_CHARS or size + 2 + len(piece) > MAX_CHUNK_CHARS):
                chunks.append("\n\n".join(current))
                current, size = [], 0
            heading = False
            size += len(piece) + (2 if current else 0)
            current.append(piece)
    if current:
        chunks.append("\n\n".join(current))
    return chunks


def _split_long(block: str) -> list[str]:
    if len(block) <= MAX_CHUNK_CHARS:
        return [block]
    units: list[str] = []
    for sentence in (m.group(0) for m in _SENTENCE.finditer(block) if m.group(0)):
        if len(sentence.strip()) <= MAX_CHUNK_CHARS:
            units.append(sentence)
            continue
        for word in (m.group(0) for m in _WORD.finditer(sentence)):
            while len(word) > MAX_CHUNK_CHARS:
                units.append(word[:MAX_CHUNK_CHARS])
                word = word[MAX_CHUNK_CHARS:]
            units.append(word)
    pieces: list[str] = []
    current = ""
    for unit in units:
        if current and len((current + unit).strip()) > MAX_CHUNK_CHARS:
            pieces.append(current.strip())
            current = ""
        current += unit
    if current.strip():
        pieces.append(current.strip())
    return [p for p in pieces if p]
