"""Markdown blocks as a Word document (python-docx)."""

from __future__ import annotations

from io import BytesIO
from typing import Any
from xml.sax.saxutils import quoteattr

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_TAB_ALIGNMENT
from docx.opc.constants import RELATIONSHIP_TYPE
from docx.oxml import OxmlElement, parse_xml
from docx.oxml.ns import qn
from docx.shared import Pt, RGBColor
from docx.text.paragraph import Paragraph as DocxParagraph

from taskcanvas.files.documents._markdown import (
    Block,
    CodeBlock,
    Heading,
    ListBlock,
    Paragraph,
    Quote,
    Spans,
    Table,
)
from taskcanvas.files.documents._page import PageSetup

_MONO = "Courier New"
_LINK_COLOR = RGBColor(0x1A, 0x55, 0xA5)
_ALIGN = {"left": WD_ALIGN_PARAGRAPH.LEFT, "center": WD_ALIGN_PARAGRAPH.CENTER, "right": WD_ALIGN_PARAGRAPH.RIGHT}
_INDENT = Pt(18)


def render_docx(blocks: list[Block], setup: PageSetup) -> bytes:
    document = Document()
    document.core_properties.title = setup.title
    _styles(document, setup)
    writer = _Writer(document)
    for block in blocks:
        writer.block(block, depth=0)
    _page_decorations(document, setup)
    buffer = BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def _styles(document: DocxDocument, setup: PageSetup) -> None:
    styles: Any = document.styles
    styles["Normal"].font.size = Pt(int(setup.font_size))
    for level in range(1, 4):
        styles[f"Heading {level}"].font.size = Pt(setup.heading_size(level))


class _Writer:
    def __init__(self, document: DocxDocument) -> None:
        self.document = document

    def block(self, block: Block, depth: int, quote: bool = False) -> None:
        doc = self.document
        if isinstance(block, Heading):
            self.runs(doc.add_heading("", level=min(block.level, 9)), block.spans)
        elif isinstance(block, Paragraph):
            p = doc.add_paragraph(style="Quote" if quote else None)
            self.runs(p, block.spans)
            self.indent(p, depth)
        elif isinstance(block, CodeBlock):
            self.code(block, depth)
        elif isinstance(block, ListBlock):
            self.list_block(block, depth, quote)
        elif isinstance(block, Quote):
            for inner in block.blocks:
                self.block(inner, depth, quote=True)
        elif isinstance(block, Table):
            self.table(block)
        else:
            _bottom_border(doc.add_paragraph())

    def list_block(self, block: ListBlock, depth: int, quote: bool) -> None:
        for n, item in enumerate(block.items, start=block.start):
            first = item[0] if item and isinstance(item[0], Paragraph) else None
            if block.ordered:
                p = self.document.add_paragraph(style="List Paragraph")
                p.add_run(f"{n}.\t")
            else:
                level = min(depth + 1, 3)
                p = self.document.add_paragraph(style="List Bullet" + (f" {level}" if level > 1 else ""))
            if block.ordered or depth > 2:
                fmt = p.paragraph_format
                fmt.left_indent = _INDENT * (depth + 1)
                fmt.first_line_indent = -_INDENT
                fmt.tab_stops.add_tab_stop(_INDENT * (depth + 1))
            if first is not None:
                self.runs(p, first.spans)
            for inner in item[1 if first is not None else 0:]:
                self.block(inner, depth + 1, quote)

    def code(self, block: CodeBlock, depth: int) -> None:
        p = self.document.add_paragraph()
        for i, line in enumerate(block.text.split("\n")):
            if i:
                p.add_run().add_break()
            p.add_run(line).font.name = _MONO
        shading = OxmlElement("w:shd")
        shading.set(qn("w:val"), "clear")
        shading.set(qn("w:fill"), "F4F4F4")
        p._p.get_or_add_pPr().append(shading)  # first: Word wants <w:shd> before <w:ind>
        self.indent(p, depth)

    def table(self, block: Table) -> None:
        rows = [block.header, *block.rows]
        columns = max(len(r) for r in rows)
        table = self.document.add_table(rows=len(rows), cols=columns)
        table.style = "Table Grid"
        table.alignment = WD_TABLE_ALIGNMENT.LEFT
        for r, row in enumerate(rows):
            for c in range(columns):
                p = table.cell(r, c).paragraphs[0]
                if c < len(block.aligns) and block.aligns[c] in _ALIGN:
                    p.alignment = _ALIGN[block.aligns[c]]
                if c < len(row):
                    self.runs(p, row[c], bold=r == 0)
        self.document.add_paragraph()

    def runs(self, p: DocxParagraph, spans: Spans, bold: bool = False) -> None:
        for span in spans:
            if span.text == "\n":
                p.add_run().add_break()
                continue
            run = p.add_run(span.text)
            run.bold = span.bold or bold or None
            run.italic = span.italic or None
            if span.strike:
                run.font.strike = True
            if span.code:
                run.font.name = _MONO
            if span.href:
                run.font.underline = True
                run.font.color.rgb = _LINK_COLOR
                rel = p.part.relate_to(span.href, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
                link = OxmlElement("w:hyperlink")
                link.set(qn("r:id"), rel)
                run._r.addprevious(link)
                link.append(run._r)

    def indent(self, p: DocxParagraph, depth: int) -> None:
        if depth:
            p.paragraph_format.left_indent = _INDENT * depth


def _bottom_border(p: DocxParagraph) -> None:
    borders = OxmlElement("w:pBdr")
    bottom = OxmlElement("w:bottom")
    for key, value in (("w:val", "single"), ("w:sz", "6"), ("w:space", "1"), ("w:color", "999999")):
        bottom.set(qn(key), value)
    borders.append(bottom)
    p._p.get_or_add_pPr().append(borders)


def _page_decorations(document: DocxDocument, setup: PageSetup) -> None:
    for section in document.sections:
        width = (section.page_width or 0) - (section.left_margin or 0) - (section.right_margin or 0)
        header = section.header
        header.is_linked_to_previous = False
        p = header.paragraphs[0]
        if setup.header:
            p.add_run(setup.header)
        if setup.watermark:
            p.add_run()._r.append(_watermark(setup.watermark))
        footer = section.footer
        footer.is_linked_to_previous = False
        p = footer.paragraphs[0]
        if setup.footer or setup.timestamp or setup.page_numbers:
            p.paragraph_format.tab_stops.add_tab_stop(int(width // 2), WD_TAB_ALIGNMENT.CENTER)
            p.paragraph_format.tab_stops.add_tab_stop(int(width), WD_TAB_ALIGNMENT.RIGHT)
            if setup.footer:
                p.add_run(setup.footer)
            p.add_run("\t")
            if setup.timestamp:
                p.add_run(setup.timestamp)
            if setup.page_numbers:
                p.add_run("\tPage ")
                _page_field(p)


def _page_field(p: DocxParagraph) -> None:
    """A PAGE field; Word fills in the number (``1`` is shown until it does)."""
    for kind, text in (("begin", None), ("instr", " PAGE "), ("separate", None), ("text", "1"), ("end", None)):
        run = p.add_run()
        if kind == "instr":
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._r.append(instr)
        elif kind == "text":
            run.text = text or ""
        else:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._r.append(char)


def _watermark(text: str) -> Any:
    """A faint diagonal text shape behind every page (Word's own watermark markup)."""
    return parse_xml(
        '<w:pict xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
        ' xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">'
        '<v:shape id="TaskcanvasWatermark" o:spid="_x0000_s2049" type="#_x0000_t136"'
        ' style="position:absolute;margin-left:0;margin-top:0;width:468pt;height:117pt;rotation:315;'
        "z-index:-251654144;mso-position-horizontal:center;mso-position-horizontal-relative:margin;"
        'mso-position-vertical:center;mso-position-vertical-relative:margin" fillcolor="#d9d9d9" stroked="f">'
        '<v:fill opacity="0.18"/>'
        f'<v:textpath on="t" style="font-family:&quot;Calibri&quot;;font-size:1pt" string={quoteattr(text)}/>'
        "</v:shape></w:pict>"
    )
