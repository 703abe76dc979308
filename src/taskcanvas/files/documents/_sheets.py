"""The Markdown tables of a text as an Excel workbook, one sheet a table (ragflow's Message ``xlsx``).

Tables are found line by line as ragflow does: a run of lines starting with ``|``, separator
lines skipped, the first row the header. A line before a table that starts with "table" or
``#`` or holds a ``:`` names its sheet. Cells that look like numbers become numbers; text
with leading zeros stays text. A text without tables becomes one ``Data`` sheet holding it.
"""

from __future__ import annotations

import re
from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Font

_LEADING_ZERO = re.compile(r"[+-]?0\d+")
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d+|\d+\.|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+")
_SHEET_FORBIDDEN = str.maketrans({"/": "_", "\\": "_", "*": None, "?": None, "[": None, "]": None, ":": None})

Cell = str | int | float
SheetTable = tuple[str, list[str], list[list[Cell]]]


def markdown_tables(text: str) -> list[SheetTable]:
    """``(sheet name, header, rows)`` for every table of ``text``, in order."""
    tables: list[SheetTable] = []
    current: list[str] = []
    title: str | None = None
    pending: str | None = None

    def close() -> None:
        header, rows = _parse(current)
        if header and rows:
            name = (title[:31].translate(_SHEET_FORBIDDEN) if title else "") or f"Table_{len(tables) + 1}"
            tables.append((name, header, rows))

    for line in text.strip().split("\n"):
        stripped = line.strip()
        if stripped.startswith("|"):
            if "|" not in stripped[1:] or not stripped.replace(" ", "").replace("|", "").replace("-", "").replace(
                    ":", ""):
                continue  # the |---|:--:| line, or a lone pipe: neither a row nor the end of a table
            if not current:
                title, pending = pending, None
            current.append(stripped)
            continue
        if current:
            close()
            current, title = [], None
        if stripped and (stripped.lower().startswith("table") or stripped.startswith("#") or ":" in stripped):
            pending = stripped.lstrip("#").strip()
    if current:
        close()
    return tables


def markdown_to_xlsx(text: str) -> bytes:
    tables = markdown_tables(text) or [("Data", ["Content"], [[text]])]
    book = Workbook()
    default = book.active
    used: set[str] = set()
    for name, header, rows in tables:
        unique, n = name, 1
        while unique in used:
            suffix = f"_{n}"
            unique, n = name[: 31 - len(suffix)] + suffix, n + 1
        used.add(unique)
        sheet = book.create_sheet(unique)
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in rows:
            sheet.append(row)
    if default is not None:
        book.remove(default)
    buffer = BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _parse(lines: list[str]) -> tuple[list[str], list[list[Cell]]]:
    header: list[str] = []
    rows: list[list[Cell]] = []
    for line in lines:
        cells = [c.strip() for c in line.split("|")]
        # The pipes at either end leave an empty first and last cell; empty cells between stay
        # (ragflow drops them too, which shifts the rest of the row into the wrong columns).
        cells = cells[1:-1] if line.endswith("|") else cells[1:]
        if not header:
            header = cells
        else:
            row: list[Cell] = [_coerce(c) for c in cells[: len(header)]]
            rows.append(row + [""] * (len(header) - len(row)))
    return header, rows


def _coerce(cell: str) -> Cell:
    """A number when the cell is plainly one (``1,234.5`` too); ``00123`` stays text."""
    if not cell or _LEADING_ZERO.fullmatch(cell):
        return cell
    candidate = cell.replace(",", "") if _THOUSANDS.fullmatch(cell) else cell
    if _INTEGER.fullmatch(candidate):
        return int(candidate)
    if _FLOAT.fullmatch(candidate):
        try:
            return float(candidate)
        except ValueError:
            return cell
    return cell
