"""Markdown blocks as a PDF (reportlab's page layout engine, platypus)."""

from __future__ import annotations

from io import BytesIO
from typing import Any, Literal
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_LEFT, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    Indenter,
    ListFlowable,
    ListItem,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)
from reportlab.platypus import Table as PdfTable

from taskcanvas.files.documents._fonts import Fonts, pdf_fonts, split_scripts
from taskcanvas.files.documents._markdown import (
    Block,
    CodeBlock,
    Heading,
    ListBlock,
    Quote,
    Spans,
    Table,
    plain,
)
from taskcanvas.files.documents._markdown import (
    Paragraph as MdParagraph,
)
from taskcanvas.files.documents._page import PageSetup

_MARGIN = 72.0
_OVERLAY_MARGIN = 36.0
_OVERLAY_SIZE = 9.0
_WATERMARK_SIZE = 48.0
_LINK_COLOR = "#1a55a5"
_ALIGN: dict[str, Literal[0, 1, 2]] = {"left": TA_LEFT, "center": TA_CENTER, "right": TA_RIGHT}


def render_pdf(blocks: list[Block], setup: PageSetup) -> bytes:
    fonts = pdf_fonts()
    buffer = BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=_MARGIN, rightMargin=_MARGIN, topMargin=_MARGIN,
                            bottomMargin=_MARGIN, title=setup.title, creator="taskcanvas")
    writer = _Writer(fonts, setup, doc.width)
    story = writer.blocks(blocks) or [Spacer(1, 1)]

    def decorate(canvas: Canvas, _doc: Any) -> None:
        _decorate(canvas, A4, setup, fonts)

    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buffer.getvalue()


class _Writer:
    def __init__(self, fonts: Fonts, setup: PageSetup, width: float) -> None:
        self.fonts = fonts
        self.width = width
        size = float(int(setup.font_size))
        self.body = ParagraphStyle("body", fontName=fonts.body, fontSize=size, leading=size * 1.3,
                                   spaceAfter=size * 0.6)
        self.code = ParagraphStyle("code", parent=self.body, fontName=fonts.mono, fontSize=size * 0.85,
                                   leading=size * 1.15, backColor=colors.HexColor("#f4f4f4"), borderPadding=4,
                                   spaceBefore=4, spaceAfter=size * 0.6 + 4)
        self.cell = ParagraphStyle("cell", parent=self.body, spaceAfter=0)
        self.headings = {
            level: ParagraphStyle(f"h{level}", parent=self.body, fontName=fonts.bold,
                                  fontSize=setup.heading_size(level), leading=setup.heading_size(level) * 1.25,
                                  spaceBefore=size * 0.8, spaceAfter=size * 0.5, keepWithNext=True)
            for level in range(1, 7)
        }

    def blocks(self, blocks: list[Block] | tuple[Block, ...]) -> list[Flowable]:
        out: list[Flowable] = []
        for block in blocks:
            out.extend(self.block(block))
        return out

    def block(self, block: Block) -> list[Flowable]:
        if isinstance(block, Heading):
            return [Paragraph(self.markup(block.spans), self.headings[min(block.level, 6)])]
        if isinstance(block, MdParagraph):
            return [Paragraph(self.markup(block.spans), self.body)]
        if isinstance(block, CodeBlock):
            return [Paragraph(self.code_markup(block.text), self.code)]
        if isinstance(block, ListBlock):
            return [self.list_block(block), Spacer(1, self.body.spaceAfter / 2)]
        if isinstance(block, Quote):
            return [Indenter(left=18), *self.blocks(block.blocks), Indenter(left=-18)]
        if isinstance(block, Table):
            return [self.table(block), Spacer(1, self.body.spaceAfter)]
        return [HRFlowable(width="100%", thickness=0.5, color=colors.grey, spaceBefore=4, spaceAfter=8)]

    def list_block(self, block: ListBlock) -> Flowable:
        items: list[Any] = [ListItem(self.blocks(item) or [Spacer(1, 1)]) for item in block.items]
        if block.ordered:
            return ListFlowable(items, bulletType="1", start=block.start, bulletFormat="%s.",
                                bulletFontName=self.fonts.body, bulletFontSize=self.body.fontSize, leftIndent=20)
        return ListFlowable(items, bulletType="bullet", start="\u2022", bulletFontName=self.fonts.body,
                            bulletFontSize=self.body.fontSize, leftIndent=16)

    def table(self, block: Table) -> Flowable:
        columns = max([len(block.header), *(len(r) for r in block.rows)])
        aligns = list(block.aligns) + [""] * (columns - len(block.aligns))
        styles = [ParagraphStyle(f"cell{i}", parent=self.cell, alignment=_ALIGN.get(a, TA_LEFT))
                  for i, a in enumerate(aligns)]
        header_styles = [ParagraphStyle(f"head{i}", parent=s, fontName=self.fonts.bold) for i, s in enumerate(styles)]
        rows: list[tuple[Spans, ...]] = [block.header, *block.rows]
        data = [[Paragraph(self.markup(row[i]) if i < len(row) else "", (header_styles if r == 0 else styles)[i])
                 for i in range(columns)] for r, row in enumerate(rows)]
        widths = self.column_widths([[plain(row[i]) if i < len(row) else "" for i in range(columns)] for row in rows])
        return PdfTable(data, colWidths=widths, repeatRows=1, hAlign="LEFT", style=[
            ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ])

    def column_widths(self, rows: list[list[str]]) -> list[float]:
        """Every column at least as wide as its longest word, the room left shared by how much text
        each column has beyond that."""
        padding = 12.0
        size = self.cell.fontSize
        font = self.fonts.bold

        def width(text: str) -> float:
            return float(stringWidth(text, font, size))

        columns = list(zip(*rows, strict=True))
        least = [max((width(w) for cell in col for w in cell.split()), default=0.0) + padding for col in columns]
        most = [max((width(cell) for cell in col), default=0.0) + padding for col in columns]
        if sum(least) >= self.width:
            return [self.width * w / sum(least) for w in least]
        if sum(most) <= self.width:
            return most
        extra = [m - le for m, le in zip(most, least, strict=True)]
        room = self.width - sum(least)
        return [le + room * x / sum(extra) for le, x in zip(least, extra, strict=True)]

    def markup(self, spans: Spans) -> str:
        """reportlab's paragraph markup for inline spans (escaped; CJK runs in their own font)."""
        parts: list[str] = []
        for span in spans:
            if span.text == "\n":
                parts.append("<br/>")
                continue
            text = _script_markup(span.text, self.fonts)
            if span.code:
                text = f'<font face="{self.fonts.mono}">{text}</font>'
            if span.strike:
                text = f"<strike>{text}</strike>"
            if span.italic:
                text = f"<i>{text}</i>"
            if span.bold:
                text = f"<b>{text}</b>"
            if span.href:
                href = escape(span.href, {'"': "&quot;"})
                text = f'<a href="{href}" color="{_LINK_COLOR}"><u>{text}</u></a>'
            parts.append(text)
        return "".join(parts)

    def code_markup(self, text: str) -> str:
        lines = [_script_markup(line.replace("\t", "    "), self.fonts).replace(" ", "&nbsp;")
                 for line in text.split("\n")]
        return "<br/>".join(lines)


def _script_markup(text: str, fonts: Fonts) -> str:
    return "".join(escape(run) if font is None else f'<font face="{font}">{escape(run)}</font>'
                   for font, run in split_scripts(text, fonts))


def _decorate(canvas: Canvas, page: tuple[float, float], setup: PageSetup, fonts: Fonts) -> None:
    """Watermark, header, footer, timestamp and page number of the page being drawn (ragflow's places)."""
    if not setup.has_decorations:
        return
    width, height = page
    canvas.saveState()
    if setup.watermark:
        canvas.saveState()
        canvas.setFillAlpha(0.15)
        canvas.setFillColor(colors.Color(0.6, 0.6, 0.6))
        canvas.translate(width / 2, height / 2)
        canvas.rotate(45)
        _draw(canvas, 0, 0, setup.watermark, _WATERMARK_SIZE, fonts, "center")
        canvas.restoreState()
    canvas.setFillColor(colors.Color(0.35, 0.35, 0.35))
    bottom = _OVERLAY_MARGIN - 8
    if setup.header:
        _draw(canvas, _OVERLAY_MARGIN, height - _OVERLAY_MARGIN + 8, setup.header, _OVERLAY_SIZE, fonts)
    if setup.footer:
        _draw(canvas, _OVERLAY_MARGIN, bottom, setup.footer, _OVERLAY_SIZE, fonts)
    if setup.timestamp:
        _draw(canvas, width / 2, bottom, setup.timestamp, _OVERLAY_SIZE, fonts, "center")
    if setup.page_numbers:
        _draw(canvas, width - _OVERLAY_MARGIN, bottom, f"Page {canvas.getPageNumber()}", _OVERLAY_SIZE,
              fonts, "right")
    canvas.restoreState()


def _draw(canvas: Canvas, x: float, y: float, text: str, size: float, fonts: Fonts, align: str = "left") -> None:
    runs = [(f or fonts.body, t) for f, t in split_scripts(text.replace("\n", " "), fonts)]
    total = sum(stringWidth(t, f, size) for f, t in runs)
    if align == "center":
        x -= total / 2
    elif align == "right":
        x -= total
    for f, t in runs:
        canvas.setFont(f, size)
        canvas.drawString(x, y, t)
        x += stringWidth(t, f, size)
