"""Markdown read into a small block model that every document writer walks.

markdown-it-py parses (CommonMark plus tables and strikethrough, raw HTML kept as text); the
model keeps only what the writers render: headings, paragraphs, lists, block quotes, code
blocks, tables, rules, and inline spans with their emphasis, code and link.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode


@dataclass(frozen=True)
class Span:
    """A run of inline text with one set of styles; a line break is a span of ``"\\n"``."""

    text: str
    bold: bool = False
    italic: bool = False
    code: bool = False
    strike: bool = False
    href: str | None = None


Spans = tuple[Span, ...]


@dataclass(frozen=True)
class Heading:
    level: int
    spans: Spans


@dataclass(frozen=True)
class Paragraph:
    spans: Spans


@dataclass(frozen=True)
class CodeBlock:
    text: str
    language: str = ""


@dataclass(frozen=True)
class ListBlock:
    ordered: bool
    start: int
    items: tuple[tuple[Block, ...], ...]


@dataclass(frozen=True)
class Quote:
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[Spans, ...]
    rows: tuple[tuple[Spans, ...], ...]
    aligns: tuple[str, ...]
    """Per column: ``"left"``, ``"center"``, ``"right"`` or ``""`` (not given)."""


@dataclass(frozen=True)
class Rule:
    pass


Block = Heading | Paragraph | CodeBlock | ListBlock | Quote | Table | Rule


@lru_cache(maxsize=1)
def markdown_parser() -> MarkdownIt:
    """CommonMark with tables and strikethrough; raw HTML is text, unsafe link schemes are refused."""
    return MarkdownIt("js-default")


def parse(markdown: str) -> list[Block]:
    return _blocks(SyntaxTreeNode(markdown_parser().parse(markdown)).children)


def plain(spans: Spans) -> str:
    return "".join(s.text for s in spans)


def _blocks(nodes: list[SyntaxTreeNode]) -> list[Block]:
    out: list[Block] = []
    for node in nodes:
        block = _block(node)
        if block is not None:
            out.append(block)
    return out


def _block(node: SyntaxTreeNode) -> Block | None:
    kind = node.type
    if kind == "heading":
        return Heading(int(node.tag[1:]), _inline_of(node))
    if kind == "paragraph":
        return Paragraph(_inline_of(node))
    if kind in ("fence", "code_block"):
        return CodeBlock(node.content.rstrip("\n"), (node.info or "").strip())
    if kind in ("bullet_list", "ordered_list"):
        start = node.attrs.get("start", 1) if kind == "ordered_list" else 1
        items = tuple(tuple(_blocks(item.children)) for item in node.children)
        return ListBlock(kind == "ordered_list", int(start), items)
    if kind == "blockquote":
        return Quote(tuple(_blocks(node.children)))
    if kind == "table":
        return _table(node)
    if kind == "hr":
        return Rule()
    if kind == "html_block":
        return Paragraph((Span(node.content.rstrip("\n")),))
    return None


def _table(node: SyntaxTreeNode) -> Table:
    header: tuple[Spans, ...] = ()
    rows: list[tuple[Spans, ...]] = []
    aligns: tuple[str, ...] = ()
    for section in node.children:
        for tr in section.children:
            cells = tuple(_inline_of(cell) for cell in tr.children)
            if section.type == "thead":
                header = cells
                aligns = tuple(_align(cell) for cell in tr.children)
            else:
                rows.append(cells)
    return Table(header, tuple(rows), aligns)


def _align(cell: SyntaxTreeNode) -> str:
    style = str(cell.attrs.get("style", ""))
    return style.removeprefix("text-align:") if style.startswith("text-align:") else ""


def _inline_of(node: SyntaxTreeNode) -> Spans:
    spans: list[Span] = []
    for child in node.children:
        if child.type == "inline":
            _inline(child.children, Span(""), spans)
    return _merged(spans)


def _inline(nodes: list[SyntaxTreeNode], style: Span, out: list[Span]) -> None:
    for node in nodes:
        kind = node.type
        if kind in ("text", "html_inline"):
            out.append(replace(style, text=node.content))
        elif kind == "code_inline":
            out.append(replace(style, text=node.content, code=True))
        elif kind == "softbreak":
            out.append(replace(style, text=" "))
        elif kind == "hardbreak":
            out.append(replace(style, text="\n"))
        elif kind == "strong":
            _inline(node.children, replace(style, bold=True), out)
        elif kind == "em":
            _inline(node.children, replace(style, italic=True), out)
        elif kind == "s":
            _inline(node.children, replace(style, strike=True), out)
        elif kind == "link":
            _inline(node.children, replace(style, href=str(node.attrs.get("href", "")) or None), out)
        elif kind == "image":
            _inline(node.children, style, out)  # the alt text: documents carry no remote images
        else:
            _inline(node.children, style, out)


def _merged(spans: list[Span]) -> Spans:
    """Neighbouring spans of one style joined, empty ones dropped."""
    out: list[Span] = []
    for span in spans:
        if not span.text:
            continue
        if out and out[-1].text != "\n" and span.text != "\n" and replace(out[-1], text="") == replace(span, text=""):
            out[-1] = replace(out[-1], text=out[-1].text + span.text)
        else:
            out.append(span)
    return tuple(out)
