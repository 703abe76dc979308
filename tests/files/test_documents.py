"""taskcanvas.files.documents: Markdown made into files, read back with their readers."""

from __future__ import annotations

import io

import docx
import pytest
from pypdf import PdfReader

from taskcanvas.files.documents import (
    PageSetup,
    UnsupportedFormat,
    markdown_tables,
    markdown_to_html,
    markdown_to_text,
    render_document,
    strip_thinking,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("<think>a</think>b", "b"),
    ("x\n<think>\nlong\n</think>\n\n\n\ny", "x\n\ny"),
    ("answer <think>never closed", "answer"),
    ("stray </think> tag", "stray  tag"),
    ("", ""),
])
def test_strip_thinking(text: str, expected: str) -> None:
    assert strip_thinking(text) == expected


def test_unsupported_format() -> None:
    with pytest.raises(UnsupportedFormat, match="Unsupported output format: odt"):
        render_document("x", "odt")


@pytest.mark.parametrize("fmt", ["pdf", "docx"])
def test_empty_text_still_makes_a_document(fmt: str) -> None:
    data = render_document("", fmt)
    if fmt == "pdf":
        assert len(PdfReader(io.BytesIO(data)).pages) == 1
    else:
        assert docx.Document(io.BytesIO(data)).paragraphs is not None


def test_pdf_table_wider_than_the_page_and_long_code_lines() -> None:
    header = "| " + " | ".join(f"column{i}" for i in range(12)) + " |"
    table = "\n".join([header, "|" + "---|" * 12, "| " + " | ".join("v" * 30 for _ in range(12)) + " |"])
    code = "```\n" + "x" * 400 + "\n```"
    text = PdfReader(io.BytesIO(render_document(f"{table}\n\n{code}", "pdf"))).pages[0].extract_text()
    joined = "".join(text.split())  # narrow columns break words over lines
    assert all(f"column{i}" in joined for i in range(12))
    assert joined.count("x") == 400


def test_pdf_escapes_markup_characters() -> None:
    data = render_document("a < b & c > d, <b>not bold</b> &amp;", "pdf", PageSetup(header="<x & y>"))
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert "a < b & c > d, <b>not bold</b> &" in text  # &amp; is Markdown for &
    assert "<x & y>" in text


def test_docx_links_are_hyperlinks() -> None:
    document = docx.Document(io.BytesIO(render_document("see [docs](https://example.com/x) now", "docx")))
    [paragraph] = document.paragraphs
    assert paragraph.text == "see docs now"
    [link] = paragraph.hyperlinks
    assert (link.text, link.address) == ("docs", "https://example.com/x")


def test_text_keeps_nested_structure() -> None:
    text = markdown_to_text("- a\n  1. one\n  2. two\n- b\n\n> quoted\n> more")
    assert text == "- a\n\n  1. one\n  2. two\n- b\n\n  quoted more\n"


def test_html_refuses_script_links() -> None:
    page = markdown_to_html("[x](javascript:alert(1)) [y](https://ok.example)")
    assert "javascript:" not in page.split("<body>")[1].replace("[x](javascript:alert(1))", "")
    assert '<a href="https://ok.example">y</a>' in page


def test_markdown_tables_titles_and_cells() -> None:
    text = "Intro\n\n### Costs\n|a|b|\n|-|-|\n|1||\n| lone pipe\n|2|3,000.5|\nafter\n\n|x|\n|-|\n|y|\n"
    assert markdown_tables(text) == [("Costs", ["a", "b"], [[1, ""], [2, 3000.5]]),
                                     ("Table_2", ["x"], [["y"]])]
