"""Markdown as plain text and as a standalone HTML page."""

from __future__ import annotations

import html

from tabulate import tabulate

from taskcanvas.files.documents._markdown import (
    Block,
    CodeBlock,
    Heading,
    ListBlock,
    Paragraph,
    Quote,
    Table,
    markdown_parser,
    parse,
    plain,
)

_TABLE_ALIGN = {"left": "left", "center": "center", "right": "right"}


def markdown_to_text(markdown: str) -> str:
    """Plain text: the words, lists and tables of ``markdown`` without its markup."""
    return "\n\n".join(_text(block) for block in parse(markdown)) + "\n"


def _text(block: Block) -> str:
    if isinstance(block, (Heading, Paragraph)):
        return plain(block.spans)
    if isinstance(block, CodeBlock):
        return "\n".join("    " + line for line in block.text.split("\n"))
    if isinstance(block, ListBlock):
        return _list_text(block)
    if isinstance(block, Quote):
        inner = "\n\n".join(_text(b) for b in block.blocks)
        return "\n".join(("  " + line) if line else line for line in inner.split("\n"))
    if isinstance(block, Table):
        header = [plain(c) for c in block.header]
        rows = [[plain(c) for c in row] for row in block.rows]
        aligns = [_TABLE_ALIGN.get(a, "left") for a in block.aligns]
        return str(tabulate(rows, headers=header, tablefmt="simple", colalign=aligns or None,
                            disable_numparse=True))
    return "-" * 72  # a rule


def _list_text(block: ListBlock) -> str:
    lines: list[str] = []
    for n, item in enumerate(block.items, start=block.start):
        marker = f"{n}. " if block.ordered else "- "
        body = "\n\n".join(_text(b) for b in item) if item else ""
        for i, line in enumerate(body.split("\n")):
            if i == 0:
                lines.append(marker + line)
            else:
                lines.append((" " * len(marker) + line) if line else line)
    return "\n".join(lines)


_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: sans-serif; font-size: {size}pt; line-height: 1.4; max-width: 48em; margin: 2em auto; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #999; padding: 0.25em 0.5em; }}
pre {{ background: #f4f4f4; padding: 0.5em; overflow-x: auto; }}
blockquote {{ color: #555; border-left: 3px solid #ccc; margin-left: 0; padding-left: 1em; }}
</style>
</head>
<body>
{body}</body>
</html>
"""


def markdown_to_html(markdown: str, *, title: str = "", font_size: float = 12) -> str:
    """A standalone UTF-8 HTML page (raw HTML in ``markdown`` is shown as text, never run)."""
    body = markdown_parser().render(markdown)
    return _PAGE.format(title=html.escape(title), size=f"{font_size:g}", body=body)

